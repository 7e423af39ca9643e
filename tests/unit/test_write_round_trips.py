"""A create sends one statement on PostgreSQL (storage/one_trip.py): the owner's row and the
task in one round trip; SQLite keeps its statements. And what folding them must keep: the
quota, and a failed or no-op write that moves nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import Engine, event, select
from starlette.testclient import TestClient

from storage import IfMatch, PreconditionFailed, QuotaExceeded, TaskNotFound, TaskStore
from storage.models import TaskOwnerRow
from todo_api.contract import task_defaults

# Statements (cursor executes) per write; BEGIN and COMMIT are not cursor executes.
STATEMENTS = {
    "postgresql": {"create": 1, "patch": 2, "toggle": 3},
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
