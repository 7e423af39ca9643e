"""One event stream as an ASGI response, driven without a server: how it ends when the feed
cannot be read, and past retention."""

from __future__ import annotations

import asyncio
from typing import Any

from sqlalchemy.exc import OperationalError

from storage import Changes, CursorExpired
from todo_api.live.stream import EventStream
from todo_api.live.wakeups import Wakeups


def run_stream(read_error: Exception) -> list[dict[str, Any]]:
    sent: list[dict[str, Any]] = []

    async def scenario() -> None:
        hub = Wakeups(per_user=1, per_process=1)

        async def read(_cursor: str | None) -> Changes:
            raise read_error

        async def receive() -> dict[str, Any]:
            await asyncio.sleep(3600)  # the client stays
            return {"type": "http.disconnect"}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        stream = EventStream(
            watch=hub.watch("alice"),
            read=read,
            confirm=no_confirm,
            cursor=None,
            position=0,
            lifetime=60,
            heartbeat=60,
            send_timeout=5,
            reset=b"event: reset\ndata: {}\n\n",
            headers={"Content-Type": "text/event-stream"},
        )
        await asyncio.wait_for(stream({"type": "http"}, receive, send), 5)
        # Its place is given back.
        hub.watch("alice").close()

    asyncio.run(scenario())
    return sent


async def no_confirm(_tasks: list[Any]) -> None:
    return None


def test_a_database_away_mid_stream_ends_the_answer_cleanly() -> None:
    sent = run_stream(OperationalError("SELECT", {}, Exception("connection refused")))
    assert sent[0]["status"] == 200
    assert [m.get("body") for m in sent[1:]] == [b"retry: 2000\n\n", b""]
    assert sent[-1]["more_body"] is False  # ended as an answer ends: the client reconnects


def test_a_cursor_past_retention_sends_reset_then_ends() -> None:
    sent = run_stream(CursorExpired())
    assert [m.get("body") for m in sent[1:]] == [
        b"retry: 2000\n\n",
        b"event: reset\ndata: {}\n\n",
        b"",
    ]
    assert sent[-1]["more_body"] is False
