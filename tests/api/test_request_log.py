"""The server's log as deployed: JSON lines on stdout, one per request, each with its request
id, and never a credential."""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2 as httpx
import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from starlette.testclient import TestClient

from tests.conftest import SECRET, Client, bearer, make_token
from tests.network import free_port, serving

ACCESS_FIELDS = {
    "ts",
    "level",
    "event",
    "method",
    "route",
    "status",
    "duration_ms",
    "bytes",
    "user",
    "client",
    "request_id",
    "error",
}


class Logged:
    def __init__(self, base: str, stdout: Path, stderr: Path) -> None:
        self.base = base
        self.stdout = stdout
        self.stderr = stderr

    def lines(self) -> list[dict[str, Any]]:
        time.sleep(0.2)  # the line is written as the answer completes
        text = self.stdout.read_text()
        return [json.loads(line) for line in text.splitlines()]

    def requests(self) -> dict[str, dict[str, Any]]:
        lines = [line for line in self.lines() if line["event"] == "request"]
        by_id = {line["request_id"]: line for line in lines}
        assert len(by_id) == len(lines), "a request id logged twice"
        return by_id


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Logged]:
    env = {
        **os.environ,
        "BETTER_AUTH_SECRET": SECRET,
        "JWT_ISSUER": "http://localhost:3000",
        "JWT_AUDIENCE": "http://localhost:3000",
        "DATABASE_URL": f"sqlite:///{tmp_path / 'todo.db'}",
        # A Better Auth nobody answers for: a token it signed makes a request log the failed
        # key fetch.
        "BETTER_AUTH_URL": f"http://127.0.0.1:{free_port()}",
    }
    for name in ("LOG_FORMAT", "LOG_LEVEL", "METRICS_ENABLED", "REDIS_URL", "JWKS_URL"):
        env.pop(name, None)
    stdout, stderr = tmp_path / "stdout", tmp_path / "stderr"
    with (
        stdout.open("w") as out,
        stderr.open("w") as err,
        serving(env, tmp_path, out, err) as (
            base,
            _process,
        ),
    ):
        yield Logged(base, stdout, stderr)


def test_one_json_line_per_request_with_its_id(logged: Logged) -> None:
    alice = bearer(make_token("alice"))
    created = httpx.post(f"{logged.base}/tasks", json={"title": "logged"}, headers=alice)
    got = httpx.get(f"{logged.base}/tasks/{created.json()['id']}", headers=alice)
    missing = httpx.get(f"{logged.base}/tasks/987654321", headers=alice)
    anonymous = httpx.get(f"{logged.base}/tasks")
    answers = [created, got, missing, anonymous]

    requests = logged.requests()
    for answer in answers:
        line = requests[answer.headers["X-Request-ID"]]
        assert set(line) == ACCESS_FIELDS
        assert line["level"] == "INFO"
        assert line["status"] == answer.status_code
        assert line["bytes"] == len(answer.content)
        assert line["client"] == "127.0.0.1"
        assert line["duration_ms"] >= 0
        assert line["ts"].endswith("+00:00")
    assert requests[created.headers["X-Request-ID"]] | {"duration_ms": 0, "ts": ""} == {
        "ts": "",
        "level": "INFO",
        "event": "request",
        "method": "POST",
        "route": "/api/tasks",
        "status": 201,
        "duration_ms": 0,
        "bytes": len(created.content),
        "user": "alice",
        "client": "127.0.0.1",
        "request_id": created.headers["X-Request-ID"],
        "error": None,
    }
    assert requests[got.headers["X-Request-ID"]]["route"] == "/api/tasks/{task_id}"
    assert requests[missing.headers["X-Request-ID"]]["error"] == "TaskNotFound"
    assert requests[anonymous.headers["X-Request-ID"]]["user"] is None
    assert requests[anonymous.headers["X-Request-ID"]]["error"] == "OAuthProblem"
    # Nothing else goes to stderr: every line, the application's too, is JSON on stdout.
    assert logged.stderr.read_text() == ""


def test_a_clients_request_id_is_kept_when_it_is_token_safe(logged: Logged) -> None:
    mine = f"trace-{uuid.uuid4()}"
    kept = httpx.get(f"{logged.base}/health", headers={"X-Request-ID": mine})
    assert kept.headers["X-Request-ID"] == mine
    unsafe = ["has space", "x" * 129, "semi;colon", 'quote"d', "ünï"]
    replaced = [
        httpx.get(f"{logged.base}/health", headers={"X-Request-ID": value.encode()})
        for value in unsafe
    ]
    made = [answer.headers["X-Request-ID"] for answer in replaced]
    assert len(set(made)) == len(unsafe)
    assert not set(made) & set(unsafe)
    assert all(len(value) == 32 for value in made)
    requests = logged.requests()
    assert requests[mine]["route"] == "/api/health"
    assert set(made) <= set(requests)


def test_a_problem_body_names_the_request_id(logged: Logged) -> None:
    alice = bearer(make_token("alice"))
    mine = "client-chosen.id:1"
    refused = httpx.post(
        f"{logged.base}/tasks", json={"title": ""}, headers=alice | {"X-Request-ID": mine}
    )
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["request_id"] == mine == refused.headers["X-Request-ID"]
    assert logged.requests()[mine]["error"] == "ValidationProblem"


def test_every_line_a_request_causes_carries_its_id(logged: Logged) -> None:
    key = Ed25519PrivateKey.generate()
    signed = jwt.encode({"sub": "alice"}, key, algorithm="EdDSA", headers={"kid": "k1"})
    answer = httpx.get(f"{logged.base}/tasks", headers=bearer(signed))
    assert answer.status_code == 503
    request_id = answer.headers["X-Request-ID"]
    caused = [line for line in logged.lines() if line.get("request_id") == request_id]
    events = [line["event"] for line in caused]
    # Answering it, the server tried to fetch Better Auth's keys, and said so.
    assert events == ["jwks_fetch_failed", "server_error", "request"]
    failed = caused[0]
    assert failed["level"] == "WARNING"
    assert failed["logger"] == "todo_api.auth"
    assert failed["message"].startswith("JWKS fetch failed")
    assert caused[1]["message"] == "503: The signing keys cannot be fetched."
    assert caused[2]["error"] == "Unavailable"


def test_application_lines_have_the_same_shape(logged: Logged) -> None:
    lines = logged.lines()
    assert all({"ts", "level", "event"} <= set(line) for line in lines)
    events = {line["event"] for line in lines}
    assert {"startup", "migrated"} <= events
    startup = next(line for line in lines if line["event"] == "startup")
    assert startup["logger"] == "todo_api"
    assert startup["message"].startswith("serving on http://127.0.0.1:")


def test_a_request_id_that_is_a_credential_is_never_logged(logged: Logged) -> None:
    # Credentials in a header, the query and a body: tests/api/test_edge.py, at DEBUG.
    token = make_token("log-reader")  # token-safe, but longer than a RequestId may be
    short = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLW9mLWEtand0"  # a short JWT
    long_answer = httpx.get(f"{logged.base}/health", headers={"X-Request-ID": token})
    assert long_answer.headers["X-Request-ID"] != token
    answer = httpx.get(f"{logged.base}/health", headers={"X-Request-ID": short})
    # Taken and echoed to the client that sent it, and scrubbed from every line.
    assert answer.headers["X-Request-ID"] == short
    assert "[redacted]" in logged.requests()
    everything = logged.stdout.read_text() + logged.stderr.read_text()
    for credential in (token, short):
        assert credential not in everything
        assert credential.rsplit(".", 1)[-1] not in everything


def test_the_request_id_is_exposed_to_browsers(serve: Client) -> None:
    client: TestClient = serve(auth_secret=SECRET)
    origin = {"Origin": "http://localhost:3000"}
    answer = client.get("/api/health", headers=origin)
    exposed = answer.headers["Access-Control-Expose-Headers"].lower().split(", ")
    assert "x-request-id" in exposed
    preflight = client.options(
        "/api/tasks",
        headers=origin
        | {
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "x-request-id",
        },
    )
    assert preflight.status_code == 200
    assert "x-request-id" in preflight.headers["Access-Control-Allow-Headers"].lower()


def test_a_client_that_leaves_before_the_answer_is_logged_as_499(logged: Logged) -> None:
    host, port = logged.base.removeprefix("http://").removesuffix("/api").split(":")
    mine = f"leaves-{uuid.uuid4().hex}"
    with socket.create_connection((host, int(port))) as sock:
        head = (
            "POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: 100\r\nX-Request-ID: {mine}\r\n\r\n"
        )
        sock.sendall(head.encode() + b'{"title": ')
        time.sleep(0.2)
    time.sleep(0.3)
    line = logged.requests()[mine]
    assert line["status"] == 499
    assert line["route"] == "/api/tasks"
    assert line["error"] == "Client Closed Request"
    assert line["bytes"] == 0
