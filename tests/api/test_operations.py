"""Work Connexion would redo on every request is done once, or not at all
(todo_api/web/connexion_hooks.py, request_checks.py, dispatch.py)."""

from __future__ import annotations

import inspect

import pytest
from connexion.decorators.parameter import AsyncParameterDecorator
from connexion.lifecycle import ConnexionRequest
from starlette.testclient import TestClient

from handlers import security


def test_a_request_builds_one_connexion_request_and_no_handler_decorators(
    client: TestClient, alice: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks and the handler's call read the scope: only the security check (still
    Connexion's) makes a Connexion request, and Connexion's app never wraps a handler."""
    made: list[str] = []
    wrapped: list[object] = []
    make = ConnexionRequest.__init__
    wrap = AsyncParameterDecorator.__call__

    def counted(self: ConnexionRequest, *args: object, **kwargs: object) -> None:
        made.append("request")
        make(self, *args, **kwargs)

    def wrapping(self: AsyncParameterDecorator, function: object) -> object:
        wrapped.append(function)
        return wrap(self, function)

    monkeypatch.setattr(ConnexionRequest, "__init__", counted)
    monkeypatch.setattr(AsyncParameterDecorator, "__call__", wrapping)
    created = client.post("/api/tasks", json={"title": "once"}, headers=alice)
    assert created.status_code == 201
    made.clear()
    assert client.get(f"/api/tasks/{created.json()['id']}", headers=alice).status_code == 200
    assert made == ["request"]
    assert wrapped == []


def test_the_bearer_checks_signature_is_not_worked_out_per_request(
    client: TestClient, alice: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    worked_out: list[object] = []
    from_function = inspect._signature_from_function  # type: ignore[attr-defined]

    def spied(cls: type, function: object, *args: object, **kwargs: object) -> object:
        worked_out.append(function)
        return from_function(cls, function, *args, **kwargs)

    monkeypatch.setattr(inspect, "_signature_from_function", spied)
    for _ in range(3):
        assert client.get("/api/tasks", headers=alice).status_code == 200
    assert security.bearer_info not in worked_out
