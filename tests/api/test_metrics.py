"""`/api/metrics`: off by default, guarded by its token, outside the limits, and exact."""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import jwt
import pytest
from starlette.testclient import TestClient

from tests.conftest import SECRET, Client, bearer, make_token
from tests.fake_better_auth import FakeBetterAuth, SigningKey, better_auth_claims
from tests.network import TODO_API, free_port, serving
from tests.prometheus import Samples, samples, value

METRICS = "/api/metrics"
TOKEN = "Kq3vX9pLm2Zr7Tb1Wc5Yd8Fh4Jn6Gs0A"


def scrape(client: TestClient | httpx.Client, url: str = METRICS, **kwargs: object) -> Samples:
    response = client.get(url, **kwargs)  # type: ignore[arg-type]
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return samples(response.text)


@pytest.fixture
def metered(serve: Client) -> TestClient:
    return serve(auth_secret=SECRET, metrics_enabled=True)


def requests(scraped: dict, method: str, route: str, status: str) -> float:
    return value(scraped, "todo_api_requests_total", method=method, route=route, status=status)


def test_metrics_are_off_by_default(serve: Client) -> None:
    client = serve(auth_secret=SECRET)
    response = client.get(METRICS)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_exact_counts_per_route_template_and_status_class(metered: TestClient) -> None:
    alice = bearer(make_token("alice"))
    for _ in range(2):
        assert metered.get("/api/health").status_code == 200
    created = metered.post("/api/tasks", json={"title": "counted"}, headers=alice).json()
    for _ in range(3):
        assert metered.get(f"/api/tasks/{created['id']}", headers=alice).status_code == 200
    assert metered.get("/api/tasks/987654321", headers=alice).status_code == 404
    assert metered.get("/api/alice/tasks", headers=alice).status_code == 200
    assert metered.get(f"/api/alice/tasks/{created['id']}", headers=alice).status_code == 200
    assert metered.get("/api/no/such/place", headers=alice).status_code == 404
    forged = jwt.encode({"sub": "alice"}, "another-secret-of-at-least-32-bytes!", "HS256")
    assert metered.get("/api/tasks", headers=bearer(forged)).status_code == 401

    scraped = scrape(metered)
    assert requests(scraped, "GET", "/api/health", "2xx") == 2
    assert requests(scraped, "POST", "/api/tasks", "2xx") == 1
    # By template, never by raw path: the ids are not labels.
    assert requests(scraped, "GET", "/api/tasks/{task_id}", "2xx") == 3
    assert requests(scraped, "GET", "/api/tasks/{task_id}", "4xx") == 1
    assert requests(scraped, "GET", "/api/{user_id}/tasks", "2xx") == 1
    assert requests(scraped, "GET", "/api/{user_id}/tasks/{task_id}", "2xx") == 1
    assert requests(scraped, "GET", "unmatched", "4xx") == 1
    assert requests(scraped, "GET", "/api/tasks", "4xx") == 1
    routes = {
        dict(labels)["route"] for name, labels in scraped if name == "todo_api_requests_total"
    }
    assert not any(str(created["id"]) in route or "alice" in route for route in routes)
    # Every request answered is in the latency histogram, under the same template.
    assert (
        value(
            scraped,
            "todo_api_request_duration_seconds_count",
            method="GET",
            route="/api/tasks/{task_id}",
        )
        == 4
    )
    assert (
        value(
            scraped,
            "todo_api_request_duration_seconds_bucket",
            method="GET",
            route="/api/health",
            le="10.0",
        )
        == 2
    )
    # The scrape itself is not a request the service answers for a user.
    assert requests(scraped, "GET", METRICS, "2xx") == 0
    assert value(scraped, "todo_api_requests_in_flight") == 0
    assert value(scraped, "todo_api_auth_total", kind="hs256", outcome="accepted") == 1
    assert value(scraped, "todo_api_auth_total", kind="cached", outcome="accepted") == 6
    assert value(scraped, "todo_api_auth_total", kind="hs256", outcome="refused") == 1
    # Every connection taken from the pool went back.
    assert value(scraped, "todo_api_db_pool_checked_out") == 0


def test_replays_and_failed_preconditions_are_counted(metered: TestClient) -> None:
    alice = bearer(make_token("alice"))
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = metered.post("/api/tasks", json={"title": "once"}, headers=alice | key)
    again = metered.post("/api/tasks", json={"title": "once"}, headers=alice | key)
    assert again.headers["Idempotent-Replayed"] == "true"
    task = first.json()
    stale = {"If-Match": first.headers["ETag"]}
    changed = metered.patch(f"/api/tasks/{task['id']}", json={"title": "twice"}, headers=alice)
    assert changed.status_code == 200
    for _ in range(2):
        refused = metered.patch(
            f"/api/tasks/{task['id']}", json={"title": "thrice"}, headers=alice | stale
        )
        assert refused.status_code == 412
    scraped = scrape(metered)
    assert value(scraped, "todo_api_idempotent_replays_total") == 1
    assert value(scraped, "todo_api_precondition_failures_total") == 2


def test_rate_limit_refusals_are_counted_by_kind(serve: Client) -> None:
    client = serve(
        auth_secret=SECRET,
        metrics_enabled=True,
        rate_limit_per_user=2,
        rate_limit_per_address=3,
        rate_limit_window=86_400,
    )
    user = bearer(make_token(f"u-{uuid.uuid4().hex[:12]}"))
    statuses = [client.get("/api/tasks", headers=user).status_code for _ in range(4)]
    assert statuses == [200, 200, 429, 429]
    statuses = [client.get("/api/tasks").status_code for _ in range(5)]
    assert statuses == [401, 401, 401, 429, 429]
    # The scrape is outside the limits: the address is over its limit, and it is still read.
    scraped = scrape(client)
    assert value(scraped, "todo_api_rate_limit_refusals_total", kind="user") == 2
    assert value(scraped, "todo_api_rate_limit_refusals_total", kind="address") == 2
    assert requests(scraped, "GET", "/api/tasks", "4xx") == 2 + 5


def test_the_token_guards_the_metrics(serve: Client) -> None:
    client = serve(auth_secret=SECRET, metrics_enabled=True, metrics_token=TOKEN)
    anonymous = client.get(METRICS)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert client.get(METRICS, headers=bearer(TOKEN[:-1] + "x")).status_code == 401
    # A user's token is not the metrics token.
    assert client.get(METRICS, headers=bearer(make_token("alice"))).status_code == 401
    assert client.post(METRICS, headers=bearer(TOKEN)).status_code == 405
    scrape(client, headers=bearer(TOKEN))


def test_a_guessable_metrics_token_refuses_to_start(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "BETTER_AUTH_SECRET": SECRET,
        "METRICS_ENABLED": "true",
        "METRICS_TOKEN": "metrics-password-metrics-password",
    }
    result = subprocess.run(
        [TODO_API, "serve", "--port", str(free_port())],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "METRICS_TOKEN contains the word 'password'" in result.stderr


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    env = {
        **os.environ,
        "BETTER_AUTH_SECRET": SECRET,
        "JWT_ISSUER": "http://localhost:3000",
        "JWT_AUDIENCE": "http://localhost:3000",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'todo.db'}",
        "METRICS_ENABLED": "true",
        "RATE_LIMIT_ENABLED": "false",
        # Where `serve` makes its directory for the workers' metric files.
        "TMPDIR": str(tmp_path),
    }
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with (
        (tmp_path / "serve.log").open("w") as log,
        serving(env, tmp_path, log, subprocess.STDOUT, args=["--workers", "2"]) as (base, _),
    ):
        yield base.removesuffix("/api"), tmp_path
    # Made for this run, and gone with it.
    assert not list(tmp_path.glob("todo-api-metrics-*"))


def test_two_workers_report_one_view(two_workers: tuple[str, Path]) -> None:
    base, work = two_workers
    alice = bearer(make_token("alice"))
    # A new connection each time, so that both workers take requests.
    for _ in range(20):
        assert httpx.get(f"{base}/api/tasks", headers=alice).status_code == 200
    for _ in range(7):
        assert httpx.get(f"{base}/api/tasks/987654321", headers=alice).status_code == 404
    [directory] = work.glob("todo-api-metrics-*")
    pids = {path.stem.rsplit("_", 1)[-1] for path in directory.glob("counter_*.db")}
    assert len(pids) == 2, pids
    for _ in range(10):
        scraped = scrape(httpx, f"{base}{METRICS}")
        assert requests(scraped, "GET", "/api/tasks", "2xx") == 20
        assert requests(scraped, "GET", "/api/tasks/{task_id}", "4xx") == 7
        # The first health check came from wait_until_healthy; each process counts its own.
        assert requests(scraped, "GET", "/api/health", "2xx") >= 1
        assert value(scraped, "todo_api_requests_in_flight") == 0


def test_the_metrics_are_not_in_the_public_contract(metered: TestClient) -> None:
    contract = metered.get("/api/openapi.json").json()
    assert not [path for path in contract["paths"] if "metrics" in path]


def test_better_auth_tokens_and_key_fetches_are_counted(serve: Client) -> None:
    fake = FakeBetterAuth()
    try:
        key = SigningKey("EdDSA")
        fake.published = [key.jwk()]
        fake.sessions = {"session-token-of-alice": "alice"}
        client = serve(
            auth_secret=SECRET,
            better_auth_url=fake.url,
            better_auth_sessions=True,
            metrics_enabled=True,
            jwks_refetch_cooldown=0.01,
        )
        signed = key.sign(better_auth_claims(fake.url, "alice"))
        assert client.get("/api/tasks", headers=bearer(signed)).status_code == 200
        unknown = SigningKey("EdDSA").sign(better_auth_claims(fake.url, "alice"))
        time.sleep(0.02)
        assert client.get("/api/tasks", headers=bearer(unknown)).status_code == 401
        assert client.get("/api/tasks", headers=bearer("session-token-of-alice")).status_code == 200
        assert client.get("/api/tasks", headers=bearer("not-a-session")).status_code == 401
        fake.stop()
        time.sleep(0.02)
        other = SigningKey("EdDSA").sign(better_auth_claims(fake.url, "alice"))
        assert client.get("/api/tasks", headers=bearer(other)).status_code == 503
    finally:
        fake.stop()
    scraped = scrape(client)
    # Fetched for the first token, again for each unknown key; the last fetch found no one.
    assert value(scraped, "todo_api_jwks_fetches_total", outcome="ok") == 2
    assert value(scraped, "todo_api_jwks_fetches_total", outcome="failed") == 1
    assert value(scraped, "todo_api_auth_total", kind="jwks", outcome="accepted") == 1
    assert value(scraped, "todo_api_auth_total", kind="jwks", outcome="refused") == 1
    assert value(scraped, "todo_api_auth_total", kind="jwks", outcome="unavailable") == 1
    assert value(scraped, "todo_api_auth_total", kind="session", outcome="accepted") == 1
    assert value(scraped, "todo_api_auth_total", kind="session", outcome="refused") == 1
