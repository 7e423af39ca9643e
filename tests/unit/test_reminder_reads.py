"""A reminder that reaches several streams of one user is read from the database once per
user in each process, not once per stream: the claim returns the task, and a process that
hears of another's claim (LISTEN) reads it once and hands it to all its streams."""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from sqlalchemy import Engine, event
from starlette.testclient import TestClient

from storage import TaskStore, build_engine
from storage.tickets import TicketStore
from tests.conftest import SECRET
from todo_api.contract import task_defaults
from todo_api.live.streams import LiveUpdates
from todo_api.live.wakeups import Wakeups
from todo_api.settings import Settings

WAKEUPS = ["poll", "listen"] if os.environ.get("TEST_DATABASE_URL") else ["poll"]


@dataclass
class Process:
    """One server process's live updates, on an engine of its own that counts task reads."""

    live: LiveUpdates
    engine: Engine
    reads: list[str] = field(default_factory=list)
    streams: list[tuple[bytearray, asyncio.Event, asyncio.Task[None]]] = field(default_factory=list)

    async def open(self, user_id: str) -> None:
        sent = bytearray()
        leave = asyncio.Event()

        async def send(message: dict[str, Any]) -> None:
            sent.extend(message.get("body", b""))

        async def receive() -> dict[str, Any]:
            await leave.wait()
            return {"type": "http.disconnect"}

        stream = await self.live.open(user_id, None, None)
        running = asyncio.ensure_future(stream({"type": "http"}, receive, send))
        self.streams.append((sent, leave, running))

    def every_stream_got(self, text: bytes) -> bool:
        return all(text in sent for sent, _, _ in self.streams)

    async def close(self) -> None:
        for _, leave, _ in self.streams:
            leave.set()
        await asyncio.gather(*(running for _, _, running in self.streams))
        await asyncio.to_thread(self.live.stop)
        self.engine.dispose()


def process(database_url: str, wakeups: str) -> Process:
    engine = build_engine(database_url)
    settings = Settings(database_url=database_url, auth_secret=SECRET, stream_wakeups=wakeups)
    hub = Wakeups(per_user=10, per_process=100)
    store = TaskStore(engine, quota=100, on_change=hub.wake)
    tickets = TicketStore(engine, dt.timedelta(seconds=60))
    live = LiveUpdates(settings, store, tickets, hub, asyncio.Semaphore(10))
    counted = Process(live, engine)

    @event.listens_for(engine, "before_cursor_execute")
    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        text = " ".join(statement.split())
        if text.upper().startswith("SELECT") and " FROM tasks" in text:
            counted.reads.append(text)

    live.start()
    return counted


async def until(condition: Any, seconds: float) -> bool:
    deadline = asyncio.get_running_loop().time() + seconds
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            return False
        await asyncio.sleep(0.05)
    return True


@pytest.mark.parametrize("wakeups", WAKEUPS)
def test_a_reminder_is_read_once_per_user_however_many_streams_hold_it(
    database_url: str, app_client: TestClient, engine: Engine, wakeups: str
) -> None:
    user = f"fan-out-{uuid.uuid4().hex}"
    store = TaskStore(engine, quota=100)
    # Due in 1.5 s: the streams have read the feed before any claim round takes it.
    due = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1.5)
    fields = {"title": "t", "due_date": due, "remind_before": dt.timedelta(0)}
    store.create(user, task_defaults() | fields)

    async def scenario() -> dict[str, int]:
        # With LISTEN, a second process with a stream of the user claims too: either may
        # claim, and the other hears of it and reads the task.
        names = ["b", "a"] if wakeups == "listen" else ["b"]
        processes = {name: process(database_url, wakeups) for name in names}
        try:
            for _ in range(4):
                await processes["b"].open(user)
            if "a" in processes:
                await processes["a"].open(user)
            everyone = list(processes.values())
            read = await until(
                lambda: all(p.every_stream_got(b"event: change") for p in everyone), 5
            )
            assert read, "a stream did not read the feed"
            for each in everyone:
                each.reads.clear()
            got = await until(
                lambda: all(p.every_stream_got(b"event: reminder") for p in everyone), 10
            )
            assert got, "the reminder did not reach every stream"
            await asyncio.sleep(0.3)  # any read that follows the writes
            return {name: len(p.reads) for name, p in processes.items()}
        finally:
            for each in processes.values():
                await each.close()

    reads = asyncio.run(scenario())
    # Measured: the task reads each process made from the claim to the last stream's write.
    print(f"task reads per process ({wakeups}): {reads}")
    assert all(count <= 1 for count in reads.values()), reads
