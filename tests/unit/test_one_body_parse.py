"""A write's body is parsed once, by the validator, and the handler is given that parse: not a
second `json.loads` of its own, which read duplicate members and other charsets otherwise."""

from __future__ import annotations

import json
from typing import Any

import pytest
from starlette.testclient import TestClient


def test_a_create_body_is_parsed_once(
    client: TestClient, alice: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    body = '{"title": "parsed once", "tags": ["a"]}'
    parses: list[Any] = []
    loads = json.loads

    def counting(text: Any, *args: Any, **kwargs: Any) -> Any:
        if (text.decode() if isinstance(text, bytes) else text) == body:
            parses.append(text)
        return loads(text, *args, **kwargs)

    monkeypatch.setattr(json, "loads", counting)
    headers = {**alice, "Content-Type": "application/json"}
    response = client.post("/api/tasks", content=body.encode(), headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "parsed once"
    assert len(parses) == 1
