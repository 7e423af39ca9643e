"""PostgreSQL's LISTEN/NOTIFY as the store uses it: a notification for each committed write,
none for a write that rolled back, and a listener that reconnects and catches up."""

from __future__ import annotations

import os
import queue
import threading
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine
from sqlalchemy.engine import make_url

from storage import PreconditionFailed, TaskStore
from storage.notifications import ChangeListener
from storage.records import IfMatch
from tests.tcp_proxy import TcpProxy

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)

TASK = {
    "title": "t",
    "description": None,
    "completed": False,
    "priority": "medium",
    "tags": [],
    "due_date": None,
}


class Heard:
    def __init__(self) -> None:
        self.wakes: queue.Queue[tuple[str, int]] = queue.Queue()
        self.everyone = threading.Event()

    def wake(self, user_id: str, seq: int) -> None:
        self.wakes.put((user_id, seq))

    def next(self, timeout: float = 5) -> tuple[str, int]:
        return self.wakes.get(timeout=timeout)

    def none(self, wait: float = 0.5) -> bool:
        try:
            self.wakes.get(timeout=wait)
        except queue.Empty:
            return True
        return False


@pytest.fixture
def proxy(database_url: str) -> Iterator[TcpProxy]:
    url = make_url(database_url)
    proxy = TcpProxy((url.host or "127.0.0.1", url.port or 5432))
    yield proxy
    proxy.cut()


@pytest.fixture
def heard(database_url: str, proxy: TcpProxy, engine: Engine) -> Iterator[Heard]:
    heard = Heard()
    proxied = make_url(database_url).set(host="127.0.0.1", port=proxy.port)
    listener = ChangeListener(
        proxied.render_as_string(hide_password=False), heard.wake, heard.everyone.set, retry=0.2
    )
    listener.start()
    assert listener.listening.wait(5)
    heard.listener = listener  # type: ignore[attr-defined]
    yield heard
    listener.stop()


def test_each_committed_write_is_heard_and_a_rolled_back_one_is_not(
    heard: Heard, engine: Engine, client: object
) -> None:
    store = TaskStore(engine, quota=100)
    task = store.create("alice", TASK).task
    assert heard.next() == ("alice", 1)
    store.update("alice", task.id, {"title": "two"})
    assert heard.next() == ("alice", 2)
    with pytest.raises(PreconditionFailed):
        store.update("alice", task.id, {"title": "three"}, if_match=IfMatch(frozenset({1})))
    store.update("alice", task.id, {"title": "two"})  # changes nothing: nothing is written
    assert heard.none()
    store.delete("alice", task.id)
    assert heard.next() == ("alice", 3)


def test_a_listener_that_lost_its_connection_reconnects_and_has_everyone_read_again(
    heard: Heard, proxy: TcpProxy, engine: Engine, client: object
) -> None:
    store = TaskStore(engine, quota=100)
    listener: ChangeListener = heard.listener  # type: ignore[attr-defined]
    proxy.cut()
    deadline = time.monotonic() + 5
    while listener.listening.is_set():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    store.create("alice", TASK)  # made while nobody listened: not heard
    assert heard.none(0.3)
    proxy.restore()
    assert heard.everyone.wait(5)  # so every stream reads the feed, this write included
    assert listener.listening.is_set()
    store.create("alice", TASK)
    assert heard.next() == ("alice", 2)
