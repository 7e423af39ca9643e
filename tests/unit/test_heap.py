"""A served process's heap is frozen once its app has started, not before."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest

from todo_api.web.heap import FrozenAfterStartup


def test_the_heap_is_frozen_when_the_app_has_started(monkeypatch: pytest.MonkeyPatch) -> None:
    events: list[str] = []
    monkeypatch.setattr(gc, "freeze", lambda: events.append("freeze"))

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await receive()
        events.append("started")
        await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})

    async def receive() -> dict[str, Any]:
        return {"type": "lifespan.startup"}

    async def send(message: dict[str, Any]) -> None:
        events.append(message["type"])

    asyncio.run(FrozenAfterStartup(app)({"type": "lifespan"}, receive, send))
    assert events == [
        "started",
        "freeze",
        "lifespan.startup.complete",
        "lifespan.shutdown.complete",
    ]


def test_a_request_passes_through_untouched(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gc, "freeze", lambda: pytest.fail("frozen on a request"))
    seen: list[dict[str, Any]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        seen.append(scope)
        await send({"type": "http.response.start", "status": 204})

    async def send(message: dict[str, Any]) -> None:
        seen.append(message)

    scope = {"type": "http"}
    asyncio.run(FrozenAfterStartup(app)(scope, None, send))
    assert seen == [scope, {"type": "http.response.start", "status": 204}]
