"""Faults reach the client as problems: no stack trace, no SQL, no driver text."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.testclient import TestClient

from storage import TaskStore
from tests.conftest import SECRET, Client, bearer, make_token
from tests.network import free_port


def test_unexpected_error_is_a_generic_500(
    client: TestClient, alice: dict[str, str], monkeypatch: pytest.MonkeyPatch, caplog
) -> None:
    def explode(*_args: object) -> None:
        raise RuntimeError("SELECT secret FROM internals")

    monkeypatch.setattr(TaskStore, "get", explode)
    response = client.get("/api/tasks/1", headers=alice)
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["title"] == "Internal Server Error"
    assert "secret" not in response.text
    assert "Traceback" not in response.text
    assert "SELECT secret FROM internals" in caplog.text


@pytest.mark.parametrize(
    "error",
    [
        OperationalError("SELECT 1", {}, Exception("connection refused to 10.0.0.1")),
        PoolTimeout("QueuePool limit of size 5 overflow 5 reached, host 10.0.0.1"),
    ],
    ids=["unreachable", "pool-exhausted"],
)
def test_database_unavailable_is_503_with_retry_after(
    client: TestClient, alice: dict[str, str], monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    def unreachable(*_args: object) -> None:
        raise error

    monkeypatch.setattr(TaskStore, "list_tasks", unreachable)
    response = client.get("/api/tasks", headers=alice)
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) > 0
    assert "10.0.0.1" not in response.text


def test_readiness_follows_the_database(client: TestClient) -> None:
    response = client.get("/api/health/ready")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_unreachable_database_is_not_ready_but_alive(serve: Client) -> None:
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nothing"
    api = serve(auth_secret=SECRET, auto_migrate=False, database_url=url)
    assert api.get("/api/health").status_code == 200
    response = api.get("/api/health/ready")
    assert response.status_code == 503
    assert response.headers["content-type"] == "application/problem+json"
    assert int(response.headers["Retry-After"]) >= 1
    tasks = api.get("/api/tasks", headers=bearer(make_token(iss=None, aud=None)))
    assert tasks.status_code == 503
