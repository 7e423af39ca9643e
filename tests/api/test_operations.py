"""Work Connexion would redo on every request is done once (todo_api/web/connexion_hooks.py)."""

from __future__ import annotations

import inspect

import pytest
from connexion.decorators.parameter import AsyncParameterDecorator
from starlette.testclient import TestClient

from handlers import security


def test_handlers_are_wrapped_once_per_operation(
    client: TestClient, alice: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrapped: list[str] = []
    wrap = AsyncParameterDecorator.__call__

    def counted(self: AsyncParameterDecorator, function: object) -> object:
        wrapped.append(getattr(function, "__name__", repr(function)))
        return wrap(self, function)

    monkeypatch.setattr(AsyncParameterDecorator, "__call__", counted)
    created = client.post("/api/tasks", json={"title": "once"}, headers=alice).json()
    for _ in range(3):
        assert client.get("/api/tasks", headers=alice).status_code == 200
        assert client.get(f"/api/tasks/{created['id']}", headers=alice).status_code == 200
    # The suite's app may have served these operations before: at most one wrap each.
    assert sorted(wrapped) == sorted(set(wrapped))
    assert set(wrapped) <= {"create_task", "list_tasks", "get_task"}


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
