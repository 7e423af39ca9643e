"""The API's index: `/api` and `/api/` say what the server is and where its documents are."""

from __future__ import annotations

import importlib.metadata

import pytest
from starlette.testclient import TestClient

from todo_api.contract import spec


@pytest.mark.parametrize("path", ["/api", "/api/", "/api?_=1712345678"])
def test_the_api_root_answers_the_index_itself_without_a_redirect(
    client: TestClient, path: str
) -> None:
    response = client.get(path)  # no token, and redirects are not followed
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "name": "todo-api",
        "version": importlib.metadata.version("todo-api"),
        "links": {
            "docs": "/api/docs/",
            "openapi": "/api/openapi.json",
            "health": "/api/health",
        },
    }


def test_every_link_of_the_index_answers_200(client: TestClient) -> None:
    links = client.get("/api").json()["links"]
    for name, path in links.items():
        response = client.get(path)
        assert response.status_code == 200, (name, path, response.status_code)
    assert client.get(links["openapi"]).json() == spec()


def test_the_index_is_read_only(client: TestClient) -> None:
    for path in ("/api", "/api/"):
        response = client.post(path)
        assert response.status_code == 405
        assert response.headers["content-type"] == "application/problem+json"
        assert response.headers["allow"] == "GET, HEAD"
