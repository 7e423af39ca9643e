"""A write's body is parsed once, by the validator, and the handler is given that parse: not a
second `json.loads` of its own, which read duplicate members and other charsets otherwise."""

from __future__ import annotations

import inspect
import json
from typing import Any

import pytest
from connexion.decorators.main import ASGIDecorator
from connexion.lifecycle import ConnexionRequest
from starlette.testclient import TestClient

from todo_api.web import connexion_hooks


def test_connexion_still_makes_the_request_through_the_decorators_framework() -> None:
    assert "self.framework.get_request(" in inspect.getsource(ASGIDecorator.__call__)
    assert "self.json()" in inspect.getsource(ConnexionRequest.get_body)
    assert connexion_hooks._DecorateOnce.framework is connexion_hooks._Framework


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
