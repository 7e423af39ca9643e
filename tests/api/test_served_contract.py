"""The contract is served as written: /api/openapi.json and /api/openapi.yaml, and Swagger UI
reads it from there."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from openapi_spec_validator import validate
from starlette.testclient import TestClient

from todo_api.contract import SPEC_DIR, SPEC_FILE

WRITTEN = (SPEC_DIR / SPEC_FILE).read_bytes()
DOCUMENTS = ["/api/openapi.json", "/api/openapi.yaml"]


def _refs(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        if "$ref" in node:
            yield node["$ref"]
        for value in node.values():
            yield from _refs(value)
    elif isinstance(node, list):
        for value in node:
            yield from _refs(value)


def test_json_is_the_written_document_with_its_components_and_refs(client: TestClient) -> None:
    response = client.get("/api/openapi.json")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    # The file's YAML aliases come out expanded; everything else is as written.
    assert document == yaml.safe_load(WRITTEN)
    assert "Task" in document["components"]["schemas"]
    assert "#/components/schemas/Task" in set(_refs(document))
    assert document["servers"] == [{"url": "/api"}]
    validate(document)


def test_json_is_about_the_size_of_the_yaml(client: TestClient) -> None:
    assert len(client.get("/api/openapi.json").content) <= 1.5 * len(WRITTEN)


def test_yaml_is_the_file_as_written(client: TestClient) -> None:
    response = client.get("/api/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/yaml"
    assert response.content == WRITTEN
    document = yaml.safe_load(response.content)
    assert document == client.get("/api/openapi.json").json()
    validate(document)


@pytest.mark.parametrize("path", DOCUMENTS)
def test_documents_need_no_token_and_revalidate_by_etag(client: TestClient, path: str) -> None:
    first = client.get(path)
    assert first.status_code == 200
    assert first.headers["cache-control"] == "no-cache"
    etag = first.headers["etag"]
    again = client.get(path, headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.headers["etag"] == etag
    assert again.content == b""
    assert client.get(path, headers={"If-None-Match": '"other"'}).content == first.content


def test_each_document_has_its_own_etag(client: TestClient) -> None:
    etags = {client.get(path).headers["etag"] for path in DOCUMENTS}
    assert len(etags) == len(DOCUMENTS)


@pytest.mark.parametrize("path", DOCUMENTS)
def test_head_answers_the_headers_of_get(client: TestClient, path: str) -> None:
    head, get = client.head(path), client.get(path)
    assert head.status_code == 200
    assert head.content == b""
    for name in ("content-type", "content-length", "etag"):
        assert head.headers[name] == get.headers[name]


@pytest.mark.parametrize("path", DOCUMENTS)
def test_a_trailing_slash_is_served_in_place(client: TestClient, path: str) -> None:
    # In place, as TrailingSlash serves the API's paths: no redirect.
    response = client.get(path + "/")
    assert response.status_code == 200
    assert response.content == client.get(path).content


@pytest.mark.parametrize("path", DOCUMENTS)
def test_documents_are_read_only(client: TestClient, path: str) -> None:
    response = client.post(path, json={})
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert response.headers["content-type"] == "application/problem+json"


def test_swagger_ui_reads_the_served_document(client: TestClient) -> None:
    page = client.get("/api/docs/")
    assert page.status_code == 200
    [url] = re.findall(r'\burl: "([^"]+)"', page.text)
    assert "configUrl" not in page.text
    document = client.get(url)
    assert document.content == client.get("/api/openapi.json").content
    assert "#/components/schemas/Task" in set(_refs(json.loads(document.content)))
