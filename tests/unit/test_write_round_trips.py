"""The benchmark's writes send one statement on PostgreSQL (storage/one_trip.py): the owner's
row and the task in one round trip; SQLite keeps its statements. And what folding them must
keep: the quota, a failed or no-op write that moves nothing, and writes racing for the owner's
lock that end as if one ran after the other."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select, text
from starlette.testclient import TestClient

from storage import IfMatch, PreconditionFailed, QuotaExceeded, TaskNotFound, TaskStore
from storage.models import TaskOwnerRow
from todo_api.contract import task_defaults

# Statements (cursor executes) per write; BEGIN and COMMIT are not cursor executes.
STATEMENTS = {
    "postgresql": {"create": 1, "patch": 1, "toggle": 1},
    "sqlite": {"create": 3, "patch": 2, "toggle": 3},
}


@pytest.fixture
def store(engine: Engine, client: TestClient) -> TaskStore:
    return TaskStore(engine, quota=100)


def new_task(**fields: object) -> dict[str, object]:
    return task_defaults() | {"title": "t"} | fields


@contextmanager
def statements(engine: Engine) -> Iterator[list[str]]:
    sent: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        sent.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", count)


def owner_row(engine: Engine, user_id: str) -> tuple[Any, ...] | None:
    columns = (TaskOwnerRow.task_count, TaskOwnerRow.completed_count, TaskOwnerRow.change_seq)
    with engine.connect() as connection:
        row = connection.execute(select(*columns).where(TaskOwnerRow.user_id == user_id)).first()
    return None if row is None else tuple(row)


@pytest.mark.parametrize("write", ["create", "patch", "toggle"])
def test_each_benchmark_write_sends_its_statements(
    store: TaskStore, engine: Engine, write: str
) -> None:
    task = store.create("alice", new_task()).task
    calls: dict[str, Callable[[], object]] = {
        "create": lambda: store.create("alice", new_task(title="another")),
        "patch": lambda: store.update("alice", task.id, {"title": "renamed"}),
        "toggle": lambda: store.set_completed("alice", task.id, None),
    }
    with statements(engine) as sent:
        calls[write]()
    assert len(sent) == STATEMENTS[engine.dialect.name][write], sent


def test_a_users_first_create_makes_the_owner_row_in_the_same_statement(
    store: TaskStore, engine: Engine
) -> None:
    with statements(engine) as sent:
        task = store.create("alice", new_task(completed=True)).task
    assert len(sent) == STATEMENTS[engine.dialect.name]["create"]
    assert owner_row(engine, "alice") == (1, 1, 1)
    assert task.completed
    assert store.changes("alice", None, 10).cursor is not None


def test_a_create_past_the_quota_moves_nothing(engine: Engine, client: TestClient) -> None:
    store = TaskStore(engine, quota=2)
    for title in ("one", "two"):
        store.create("alice", new_task(title=title, completed=True))
    before = owner_row(engine, "alice")
    with pytest.raises(QuotaExceeded):
        store.create("alice", new_task(title="three", completed=True))
    assert owner_row(engine, "alice") == before == (2, 2, 2)
    # A user with no row yet is held to the quota too.
    with pytest.raises(QuotaExceeded):
        TaskStore(engine, quota=0).create("bob", new_task())
    assert owner_row(engine, "bob") is None


def test_concurrent_first_creates_never_pass_the_quota(engine: Engine, client: TestClient) -> None:
    store = TaskStore(engine, quota=10)

    def create(n: int) -> bool:
        try:
            store.create("alice", new_task(title=f"t{n}"))
        except QuotaExceeded:
            return False
        return True

    with ThreadPoolExecutor(max_workers=8) as pool:
        made = list(pool.map(create, range(30)))
    assert made.count(True) == 10
    assert owner_row(engine, "alice") == (10, 0, 10)


def test_a_write_that_fails_or_changes_nothing_moves_no_owner_row(
    store: TaskStore, engine: Engine
) -> None:
    task = store.create("alice", new_task(title="same")).task
    store.create("bob", new_task())
    before = {user: owner_row(engine, user) for user in ("alice", "bob")}
    failing: list[tuple[Callable[[], object], type[Exception] | None]] = [
        (lambda: store.update("bob", task.id, {"title": "theirs"}), TaskNotFound),
        (lambda: store.set_completed("bob", task.id, None), TaskNotFound),
        (lambda: store.set_completed("alice", task.id + 1000, None), TaskNotFound),
        (lambda: store.update("carol", task.id, {"title": "nobody's"}), TaskNotFound),
        (
            lambda: store.set_completed("alice", task.id, None, if_match=IfMatch(frozenset({9}))),
            PreconditionFailed,
        ),
        (lambda: store.update("alice", task.id, {"title": "same"}), None),
    ]
    for write, error in failing:
        if error is None:
            write()
        else:
            with pytest.raises(error):
                write()
        assert {user: owner_row(engine, user) for user in before} == before
        assert owner_row(engine, "carol") is None
    assert store.get("alice", task.id) == task


class HeldAtCommit:
    """Runs a write in a thread and holds it at its commit (its locks taken) until released."""

    def __init__(self, engine: Engine, write: Callable[[], object]) -> None:
        self._engine = engine
        self._reached = threading.Event()
        self._release = threading.Event()
        self._thread = threading.Thread(target=write)
        event.listen(engine, "commit", self._hold)
        self._thread.start()
        assert self._reached.wait(10), "the held write never reached its commit"

    def _hold(self, _connection: Any) -> None:
        if threading.current_thread() is self._thread:
            self._reached.set()
            self._release.wait(10)

    def commit(self) -> None:
        self._release.set()
        self._thread.join(10)
        event.remove(self._engine, "commit", self._hold)


def race(engine: Engine, first: Callable[[], object], second: Callable[[], Any]) -> Any:
    """Run `second` while `first` holds the owner's lock, and let `first` commit once `second`
    waits for it: `second`'s statement began before `first` committed."""
    held = HeldAtCommit(engine, first)
    with ThreadPoolExecutor(max_workers=1) as pool:
        answer = pool.submit(second)
        _until_a_writer_waits(engine)
        held.commit()
        return answer.result(10)


def _until_a_writer_waits(engine: Engine) -> None:
    if engine.dialect.name != "postgresql":
        time.sleep(0.3)  # SQLite's writers queue on its lock (busy timeout): no view of it
        return
    waiting = text(
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE wait_event_type = 'Lock' AND datname = current_database()"
    )
    deadline = time.monotonic() + 10
    with engine.connect() as connection:
        while not connection.scalar(waiting):
            assert time.monotonic() < deadline, "the second write never waited for the first"
            time.sleep(0.01)
            connection.rollback()


def test_a_patch_that_waited_for_a_restore_changes_the_restored_task(
    store: TaskStore, engine: Engine
) -> None:
    task = store.create("alice", new_task(title="old")).task
    store.delete("alice", task.id)
    patched = race(
        engine,
        lambda: store.restore("alice", task.id),
        lambda: store.update("alice", task.id, {"title": "new"}),
    )
    assert patched.title == "new"
    assert store.get("alice", task.id) == patched
    assert patched.version == task.version + 3  # the delete, the restore, the patch


def test_a_toggle_that_waited_for_another_keeps_the_completed_count(
    store: TaskStore, engine: Engine
) -> None:
    task = store.create("alice", new_task()).task
    toggled = race(
        engine,
        lambda: store.set_completed("alice", task.id, None),
        lambda: store.set_completed("alice", task.id, None),
    )
    assert not toggled.completed
    assert store.get("alice", task.id) == toggled
    assert owner_row(engine, "alice") == (1, 0, 3)
