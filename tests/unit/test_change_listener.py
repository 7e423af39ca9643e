"""PostgreSQL's LISTEN/NOTIFY as the store uses it: a notification for each committed write,
none for a write that rolled back, and a listener that reconnects and catches up."""

from __future__ import annotations

import os
import queue
import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine

from storage import PreconditionFailed, TaskStore
from storage.notifications import ChangeListener
from storage.records import IfMatch
from tests.tcp_proxy import TcpProxy, proxy_to, through
from todo_api.contract import task_defaults

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)

TASK = task_defaults() | {"title": "t"}


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
    with proxy_to(database_url) as proxy:
        yield proxy


@pytest.fixture
def heard(database_url: str, proxy: TcpProxy, engine: Engine) -> Iterator[Heard]:
    heard = Heard()
    listener = ChangeListener(
        through(database_url, proxy), heard.wake, heard.everyone.set, retry=0.2
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
    user = f"listened-{uuid.uuid4().hex}"  # no earlier test's tasks
    task = store.create(user, TASK).task
    assert heard.next() == (user, 1)
    store.update(user, task.id, {"title": "two"})
    assert heard.next() == (user, 2)
    with pytest.raises(PreconditionFailed):
        store.update(user, task.id, {"title": "three"}, if_match=IfMatch(frozenset({1})))
    store.update(user, task.id, {"title": "two"})  # changes nothing: nothing is written
    assert heard.none()
    store.delete(user, task.id)
    assert heard.next() == (user, 3)


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
    user = f"listened-{uuid.uuid4().hex}"
    store.create(user, TASK)  # made while nobody listened: not heard
    assert heard.none(0.3)
    proxy.restore()
    assert heard.everyone.wait(5)  # so every stream reads the feed, this write included
    assert listener.listening.is_set()
    store.create(user, TASK)
    assert heard.next() == (user, 2)
