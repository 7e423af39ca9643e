"""One event stream as an ASGI response, driven without a server: what it writes, how a write
that fails or stalls ends it, and that it always gives its place back once."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from storage import Changes, Task, Tombstone
from storage.cursors import feed_cursor
from todo_api.live.stream import EventStream, change_events
from todo_api.live.wakeups import Wakeups
from todo_api.web.server import ABORT_EXTENSION, OPEN_EXTENSION

NOW = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
Send = Callable[[dict[str, Any]], Awaitable[None]]


class Delivery:
    def __init__(self, task: Task) -> None:
        self.task = task
        self.dropped = False

    def wrote(self) -> bool:
        return True

    def drop(self) -> None:
        self.dropped = True


class Run:
    """A stream of alice's with a feed of `pages`, on a connection `open` says is open."""

    def __init__(self, pages: list[Changes], **options: Any) -> None:
        self.pages = list(pages)
        self.options = options
        self.sent: list[dict[str, Any]] = []
        self.closed = 0
        self.aborted = 0
        self.confirmed: list[Task] = []
        self.open = True
        self.hub = Wakeups(per_user=1, per_process=1)

    async def read(self, _cursor: str | None) -> Changes:
        return self.pages.pop(0) if self.pages else Changes([], feed_cursor(9), False, [])

    async def confirm(self, tasks: list[Task]) -> None:
        self.confirmed += tasks

    async def on_close(self) -> None:
        self.closed += 1

    def abort(self) -> None:
        self.aborted += 1

    async def send(self, message: dict[str, Any]) -> None:
        self.sent.append(message)

    async def __call__(
        self,
        send: Send | None = None,
        during: Callable[[EventStream], Awaitable[None]] | None = None,
        leave: asyncio.Event | None = None,
    ) -> None:
        gone = leave or asyncio.Event()

        async def receive() -> dict[str, Any]:
            await gone.wait()
            return {"type": "http.disconnect"}

        stream = EventStream(
            watch=self.hub.watch("alice"),
            read=self.read,
            confirm=self.confirm,
            cursor=None,
            position=0,
            lifetime=self.options.get("lifetime", 60),
            heartbeat=self.options.get("heartbeat", 60),
            send_timeout=self.options.get("send_timeout", 5),
            reset=b"event: reset\ndata: {}\n\n",
            headers={"Content-Type": "text/event-stream"},
            on_close=self.on_close,
        )
        scope = {
            "type": "http",
            "extensions": {ABORT_EXTENSION: self.abort, OPEN_EXTENSION: lambda: self.open},
        }
        streaming = asyncio.ensure_future(stream(scope, receive, send or self.send))
        if during is not None:
            await during(stream)
        await asyncio.wait_for(streaming, 5)
        # Its place is given back, once.
        assert self.closed == 1
        assert self.hub.open_streams() == 0

    def bodies(self) -> list[bytes]:
        return [message["body"] for message in self.sent[1:]]


def gone(ids: list[int], after: int = 0) -> Changes:
    positions = [feed_cursor(after + i + 1) for i in range(len(ids))]
    tombstones: list[Any] = [Tombstone(id=i, deleted_at=NOW) for i in ids]
    return Changes(tombstones, positions[-1], False, positions)


def task() -> Task:
    return Task(
        id=7,
        user_id="alice",
        title="call",
        description=None,
        completed=False,
        priority="medium",
        tags=[],
        due_date=None,
        created_at=NOW,
        updated_at=NOW,
        completed_at=None,
        version=1,
        recurrence=None,
        timezone="UTC",
        series_id=None,
        next_task_id=None,
        remind_before=None,
        remind_at=NOW,
    )


def test_changes_come_with_their_ids_after_retry_and_the_answer_ends_at_shutdown() -> None:
    page = gone([1, 2])
    run = Run([page])

    async def shut_down(_stream: EventStream) -> None:
        while len(run.sent) < 3:
            await asyncio.sleep(0.01)
        run.hub.end_all()

    asyncio.run(run(during=shut_down))
    assert run.sent[0] == {
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"text/event-stream")],
    }
    assert run.bodies() == [b"retry: 2000\n\n", change_events(page), b""]
    assert b"event: change\nid: %s\n" % feed_cursor(2).encode() in run.bodies()[1]
    assert run.sent[-1]["more_body"] is False


def test_an_idle_stream_sends_heartbeats_until_its_lifetime_ends() -> None:
    run = Run([], heartbeat=0.05, lifetime=0.3)
    asyncio.run(run())
    bodies = run.bodies()
    assert bodies[0] == b"retry: 2000\n\n"
    assert bodies[-1] == b""
    assert 3 <= len(bodies[1:-1]) <= 6
    assert set(bodies[1:-1]) == {b": heartbeat\n\n"}


def test_a_reminder_is_written_then_confirmed() -> None:
    run = Run([])
    delivery = Delivery(task())

    async def remind(_stream: EventStream) -> None:
        while len(run.sent) < 2:
            await asyncio.sleep(0.01)
        run.hub.watches_of("alice")[0].remind(delivery)
        while not run.confirmed:
            await asyncio.sleep(0.01)
        run.hub.end_all()

    asyncio.run(run(during=remind))
    assert run.bodies()[1].startswith(b'event: reminder\ndata: {"id":7,')
    assert run.confirmed == [delivery.task]
    assert not delivery.dropped


def test_a_reminder_written_to_a_closing_connection_is_dropped_not_confirmed() -> None:
    run = Run([])
    delivery = Delivery(task())

    async def remind(_stream: EventStream) -> None:
        while len(run.sent) < 2:
            await asyncio.sleep(0.01)
        run.open = False  # the server drops what is written from now on
        run.hub.watches_of("alice")[0].remind(delivery)

    asyncio.run(run(during=remind))
    assert delivery.dropped
    assert run.confirmed == []
    assert run.bodies()[-1] == b""  # the answer still ends as answers do


def test_a_reader_that_takes_nothing_is_dropped_once(caplog: pytest.LogCaptureFixture) -> None:
    run = Run([gone([1])], send_timeout=0.1)
    stalled = asyncio.Event()

    async def send(message: dict[str, Any]) -> None:
        if message.get("body", b"").startswith(b"event: change"):
            await stalled.wait()  # a full socket buffer
        run.sent.append(message)

    with caplog.at_level(logging.INFO, logger="todo_api"):
        asyncio.run(run(send=send))
    assert run.aborted == 1
    # Nothing more is written to it, not even the answer's end.
    assert run.bodies() == [b"retry: 2000\n\n"]
    assert [r.event for r in caplog.records if hasattr(r, "event")] == ["stream_dropped"]


def test_a_client_that_leaves_ends_the_stream() -> None:
    run = Run([])
    leave = asyncio.Event()

    async def go(_stream: EventStream) -> None:
        while len(run.sent) < 2:
            await asyncio.sleep(0.01)
        leave.set()

    asyncio.run(run(during=go, leave=leave))
    assert run.bodies() == [b"retry: 2000\n\n"]
