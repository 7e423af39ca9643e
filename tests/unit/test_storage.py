"""The storage API on its own: isolation by owner, explicit fields, and the migrated schema."""

from __future__ import annotations

import dataclasses
import threading
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from starlette.testclient import TestClient

from storage import (
    IfMatch,
    Task,
    TaskNotFound,
    TaskQuery,
    TaskStore,
    build_engine,
    statements,
    upgrade,
)
from storage.models import Base
from tests.conftest import SECRET
from todo_api.app import create_app
from todo_api.contract import task_defaults
from todo_api.settings import Settings


@pytest.fixture
def store(engine: Engine, client: TestClient) -> TaskStore:
    return TaskStore(engine, quota=100)


def new_task(**fields: object) -> dict[str, object]:
    return task_defaults() | {"title": "t"} | fields


def test_every_task_function_is_scoped_to_its_owner(store: TaskStore) -> None:
    # Bob has tasks of his own, so that each refusal below comes from the owner check.
    store.create("bob", new_task(title="his"))
    task = store.create("alice", new_task(title="mine")).task
    for if_match in (None, IfMatch(versions=None), IfMatch(versions=frozenset({1}))):
        with pytest.raises(TaskNotFound):
            store.update("bob", task.id, {"title": "theirs"}, if_match=if_match)
        with pytest.raises(TaskNotFound):
            store.set_completed("bob", task.id, None, if_match=if_match)
        with pytest.raises(TaskNotFound):
            store.delete("bob", task.id, if_match=if_match)
    with pytest.raises(TaskNotFound):
        store.get("bob", task.id)
    with pytest.raises(TaskNotFound):
        store.restore("bob", task.id)
    assert [t.title for t in store.list_tasks("bob", TaskQuery()).tasks] == ["his"]
    assert all(
        getattr(change, "user_id", "bob") == "bob"
        for change in store.changes("bob", None, 100).changes
    )
    assert store.get("alice", task.id) == task
    store.delete("alice", task.id)
    with pytest.raises(TaskNotFound):
        store.restore("bob", task.id)
    assert store.restore("alice", task.id).title == "mine"


def test_only_writable_fields_reach_a_row(store: TaskStore) -> None:
    with pytest.raises(ValueError, match="user_id"):
        store.create("alice", new_task(user_id="mallory"))
    task = store.create("alice", new_task()).task
    with pytest.raises(ValueError, match="id"):
        store.update("alice", task.id, {"id": 5})
    with pytest.raises(ValueError, match="missing"):
        store.create("alice", {"title": "only a title"})


def test_migrations_create_the_indexes_the_queries_use(engine: Engine, client: TestClient) -> None:
    indexes = {tuple(i["column_names"]) for i in inspect(engine).get_indexes("tasks")}
    assert ("user_id", "created_at", "id") in indexes
    assert ("user_id", "completed") in indexes


def test_models_match_the_migrated_schema(engine: Engine, client: TestClient) -> None:
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert differences == []


def test_auto_migrate_can_be_switched_off(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/untouched.db"
    app = create_app(Settings(database_url=url, auth_secret=SECRET, auto_migrate=False))
    with TestClient(app) as client:
        assert client.get("/api/health").status_code == 200
    assert inspect(build_engine(url)).get_table_names() == []


def test_processes_starting_at_once_migrate_one_after_the_other(tmp_path: Path) -> None:
    for attempt in range(20):
        url = f"sqlite:///{tmp_path}/race{attempt}.db"
        engines = [build_engine(url) for _ in range(4)]
        errors: list[BaseException] = []

        threads = [threading.Thread(target=_migrate, args=(e, errors)) for e in engines]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        for engine in engines:
            engine.dispose()
        assert errors == []


def _migrate(engine: Engine, errors: list[BaseException]) -> None:
    try:
        upgrade(engine)
    except BaseException as exc:  # collected: a thread's exception fails no test
        errors.append(exc)


def test_the_sync_migration_orders_existing_tasks_before_new_writes(tmp_path: Path) -> None:
    engine = build_engine(f"sqlite:///{tmp_path}/old.db")
    upgrade(engine, "0002")
    with engine.begin() as connection:
        for title in ("older", "newer"):
            connection.exec_driver_sql(
                "INSERT INTO tasks (user_id, title, completed, priority, tags, created_at,"
                " updated_at) VALUES ('alice', ?, 0, 2, '[]', '2026-01-01 00:00:00',"
                " '2026-01-01 00:00:00')",
                (title,),
            )
        connection.exec_driver_sql("INSERT INTO task_owners VALUES ('alice', 2)")
    upgrade(engine)
    store = TaskStore(engine, quota=100)
    added = store.create("alice", new_task(title="added")).task
    changes = store.changes("alice", None, 10).changes
    assert [task.title for task in changes] == ["older", "newer", "added"]  # type: ignore[union-attr]
    assert all(task.version == 1 for task in changes)  # type: ignore[union-attr]
    assert added.version == 1
    engine.dispose()


def test_selected_columns_begin_with_the_task_fields_in_order() -> None:
    # Task.of reads rows by position.
    names = [column.name for column in statements.COLUMNS]
    fields = [field.name for field in dataclasses.fields(Task)]
    assert names[: len(fields)] == fields
