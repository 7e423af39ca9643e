"""Browsers on the configured origins may call the API and read the paging headers; redirects
stay on this host."""

from __future__ import annotations

from starlette.testclient import TestClient

from tests.conftest import SECRET, Client, bearer, make_token

ORIGIN = "http://localhost:3000"


def test_preflight_from_a_configured_origin_is_allowed(client: TestClient) -> None:
    response = client.options(
        "/api/tasks/1",
        headers={
            "Origin": ORIGIN,
            "Access-Control-Request-Method": "PATCH",
            "Access-Control-Request-Headers": "authorization, content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert response.headers["Access-Control-Allow-Credentials"] == "true"
    assert "PATCH" in response.headers["Access-Control-Allow-Methods"]
    assert "authorization" in response.headers["Access-Control-Allow-Headers"].lower()


def test_paging_headers_are_exposed(client: TestClient, alice: dict[str, str]) -> None:
    response = client.get("/api/tasks", headers={**alice, "Origin": ORIGIN})
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN
    exposed = {
        h.strip().lower() for h in response.headers["Access-Control-Expose-Headers"].split(",")
    }
    assert {"x-total-count", "link", "location"} <= exposed


def test_errors_carry_cors_headers_too(client: TestClient) -> None:
    response = client.get("/api/tasks", headers={"Origin": ORIGIN})
    assert response.status_code == 401
    assert response.headers["Access-Control-Allow-Origin"] == ORIGIN


def test_other_origins_are_not_allowed(client: TestClient, alice: dict[str, str]) -> None:
    preflight = client.options(
        "/api/tasks",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 400
    assert preflight.headers["content-type"] == "application/problem+json"
    assert preflight.json()["status"] == 400
    assert "Access-Control-Allow-Origin" not in preflight.headers
    response = client.get("/api/tasks", headers={**alice, "Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in response.headers


def test_any_origin_is_allowed_without_credentials(serve: Client) -> None:
    api = serve(auth_secret=SECRET, cors_origins=("*",))
    headers = {**bearer(make_token(iss=None, aud=None)), "Origin": "https://anywhere.example"}
    response = api.get("/api/tasks", headers=headers)
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers
    preflight = api.options(
        "/api/tasks",
        headers={"Origin": "https://anywhere.example", "Access-Control-Request-Method": "GET"},
    )
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in preflight.headers


def test_redirects_never_point_at_the_host_the_client_named(client: TestClient) -> None:
    # Swagger UI's is the one redirect left (`/api` answers the index itself: test_index.py).
    response = client.get("/api/docs", headers={"Host": "evil.example"})
    assert response.status_code in {301, 302, 307, 308}
    assert response.headers["Location"] == "/api/docs/"
