"""Request bodies are bounded however they are framed; security headers on every answer."""

from __future__ import annotations

import json
from collections.abc import Iterator

from starlette.testclient import TestClient

from tests.conftest import Client


def chunked(data: bytes, size: int = 1000) -> Iterator[bytes]:
    """A body sent with Transfer-Encoding: chunked (no Content-Length)."""
    for start in range(0, len(data), size):
        yield data[start : start + size]


def test_body_over_the_limit_is_413(client: TestClient, alice: dict[str, str]) -> None:
    body = {"title": "t", "description": "d" * 70_000}
    response = client.post("/api/tasks", json=body, headers=alice)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get("/api/tasks", headers=alice).json() == []


def test_chunked_body_over_the_limit_is_413(client: TestClient, alice: dict[str, str]) -> None:
    data = json.dumps({"title": "t", "description": "d" * 70_000}).encode()
    headers = {**alice, "Content-Type": "application/json"}
    response = client.post("/api/tasks", content=chunked(data), headers=headers)
    assert response.status_code == 413
    assert client.get("/api/tasks", headers=alice).json() == []


def test_chunked_body_within_the_limit_is_served(client: TestClient, alice: dict[str, str]) -> None:
    data = json.dumps({"title": "sent in chunks", "description": "d" * 900}).encode()
    headers = {**alice, "Content-Type": "application/json"}
    response = client.post("/api/tasks", content=chunked(data, 100), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "sent in chunks"
    task_id = response.json()["id"]
    patch = json.dumps({"title": "patched in chunks"}).encode()
    patched = client.patch(f"/api/tasks/{task_id}", content=chunked(patch, 5), headers=headers)
    assert patched.status_code == 200, patched.text
    assert patched.json()["title"] == "patched in chunks"


def test_declared_length_over_the_limit_is_refused_unread(serve: Client) -> None:
    api = serve(auth_secret="s" * 32, max_body_bytes=100)
    response = api.post(
        "/api/tasks",
        content=b"{}",
        headers={"Content-Length": "101", "Content-Type": "application/json"},
    )
    assert response.status_code == 413


def test_the_limit_is_configurable(serve: Client) -> None:
    from tests.conftest import SECRET, bearer, make_token

    api = serve(auth_secret=SECRET, max_body_bytes=40)
    headers = bearer(make_token(iss=None, aud=None))
    assert api.post("/api/tasks", json={"title": "short"}, headers=headers).status_code == 201
    response = api.post("/api/tasks", json={"title": "x" * 40}, headers=headers)
    assert response.status_code == 413


def test_every_answer_says_nosniff(client: TestClient, alice: dict[str, str]) -> None:
    for response in (
        client.get("/api/health"),
        client.get("/api/tasks", headers=alice),
        client.get("/api/tasks"),
        client.get("/api/nowhere"),
        client.options(
            "/api/tasks",
            headers={"Origin": "http://localhost:3000", "Access-Control-Request-Method": "GET"},
        ),
    ):
        assert response.headers["X-Content-Type-Options"] == "nosniff"


def test_answers_to_authenticated_requests_are_not_stored(
    client: TestClient, alice: dict[str, str]
) -> None:
    for response in (
        client.get("/api/tasks", headers=alice),
        client.post("/api/tasks", json={"title": "x"}, headers=alice),
        client.get("/api/tasks/999", headers=alice),
        client.get("/api/tasks", headers={"Authorization": "Bearer bad"}),
    ):
        assert response.headers["Cache-Control"] == "no-store"
