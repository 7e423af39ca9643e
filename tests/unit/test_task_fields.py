"""A task's fields are declared once (storage/fields.py); what is written out again, for speed or
for the type checker, must not drift from that declaration, nor the declaration from the spec."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

from storage import WRITABLE_FIELDS, Task, snapshots, statements
from storage.creation import new_row
from storage.fields import FIELDS, IN_EVERY_SNAPSHOT, NAMES, column_values, complete_column_values
from storage.models import TaskRow
from todo_api.contract import task_properties, writable_task_fields

# `version` is the task's ETag, carried in a header, not a property of the spec's Task.
NOT_IN_THE_SPEC = {"version"}

# A stored value for each field that its reading converts (the tags a tuple, which a Task holds
# as a list); any other field gets a value of its own name, so that a field read from another's
# column is seen.
STORED: dict[str, Any] = {
    "completed": True,
    "priority": 3,
    "tags": ("<tags>",),
    "remind_before": 600,
}


def stored_row(**values: Any) -> tuple[Any, ...]:
    """A row as statements.COLUMNS selects it, each column's value its own."""
    stored = STORED | values
    return tuple(stored.get(column.name, f"<{column.name}>") for column in statements.COLUMNS)


def test_the_declared_fields_are_the_specs_task_properties_in_order() -> None:
    assert [name for name in NAMES if name not in NOT_IN_THE_SPEC] == list(task_properties())


def test_a_client_writes_exactly_the_fields_the_spec_does_not_mark_read_only() -> None:
    assert tuple(WRITABLE_FIELDS) == writable_task_fields()
    for field in FIELDS:
        if field.name not in NOT_IN_THE_SPEC:
            read_only = bool(task_properties()[field.name].get("readOnly"))
            assert (field.write is None) == read_only, field.name


def test_a_nullable_property_is_a_nullable_column_and_only_then() -> None:
    columns = TaskRow.__table__.columns
    for name, schema in task_properties().items():
        assert columns[name].nullable == bool(schema.get("nullable")), name


def test_the_task_record_has_the_declared_fields_in_order() -> None:
    assert tuple(field.name for field in dataclasses.fields(Task)) == NAMES


def test_the_selected_columns_begin_with_the_declared_fields() -> None:
    names = tuple(column.name for column in statements.COLUMNS)
    assert names[: len(NAMES)] == NAMES
    assert set(names) == {column.name for column in TaskRow.__table__.columns}


def test_task_of_reads_each_field_from_its_own_column_as_declared() -> None:
    row = stored_row()
    task = Task.of(row)  # type: ignore[arg-type]
    for position, field in enumerate(FIELDS):
        assert getattr(task, field.name) == field.read(row[position]), field.name


def test_task_of_reads_null_as_none() -> None:
    row = tuple(
        None if statements.COLUMNS[n].nullable else value for n, value in enumerate(stored_row())
    )
    task = Task.of(row)  # type: ignore[arg-type]
    for field in FIELDS:
        if TaskRow.__table__.columns[field.name].nullable:
            assert getattr(task, field.name) is None, field.name


def test_writing_a_read_value_stores_the_same_value() -> None:
    # The next occurrence of a series is created from the fields of the one completed.
    row = stored_row(tags=["<tags>"])
    task = Task.of(row)  # type: ignore[arg-type]
    stored = dict(zip(NAMES, row, strict=False))
    written = column_values({name: getattr(task, name) for name in WRITABLE_FIELDS})
    assert written == {name: stored[name] for name in WRITABLE_FIELDS}


def full_task() -> Task:
    when = dt.datetime(2027, 1, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
    values: dict[str, Any] = {
        "id": 1,
        "user_id": "alice",
        "title": "t",
        "description": "d",
        "completed": True,
        "priority": "high",
        "tags": ["a"],
        "due_date": when,
        "created_at": when - dt.timedelta(days=1),
        "updated_at": when - dt.timedelta(hours=1),
        "completed_at": when - dt.timedelta(minutes=1),
        "version": 3,
        "recurrence": "FREQ=DAILY",
        "timezone": "Europe/Berlin",
        "series_id": 1,
        "next_task_id": 2,
        "remind_before": dt.timedelta(minutes=10),
        "remind_at": when - dt.timedelta(minutes=10),
    }
    assert set(values) == set(NAMES)
    return Task(**values)


def test_a_snapshot_reads_back_every_field() -> None:
    task = full_task()
    assert snapshots.load(snapshots.dump(task), Task) == task


# An answer kept for an idempotent create before recurrence and reminders existed.
OLD_SNAPSHOT = {
    "id": 1,
    "user_id": "alice",
    "title": "t",
    "description": None,
    "completed": False,
    "priority": "medium",
    "tags": [],
    "due_date": None,
    "created_at": "2026-01-01T00:00:00+00:00",
    "updated_at": "2026-01-01T00:00:00+00:00",
    "completed_at": None,
    "version": 1,
}


def test_a_snapshot_from_before_a_field_existed_answers_the_specs_default() -> None:
    loaded = snapshots.load(json.dumps(OLD_SNAPSHOT), Task)
    later = [field for field in FIELDS if field.absent is not IN_EVERY_SNAPSHOT]
    assert {field.name for field in later} == set(NAMES) - set(OLD_SNAPSHOT)
    for field in later:
        default = task_properties()[field.name].get("default")
        assert field.absent == default, field.name
        assert getattr(loaded, field.name) == default, field.name


def test_a_new_row_names_every_field_but_the_id_in_order() -> None:
    task = full_task()
    values = complete_column_values({name: getattr(task, name) for name in WRITABLE_FIELDS})
    row = new_row("alice", values, task.created_at)
    assert tuple(row) == tuple(name for name in NAMES if name != "id")
    assert {name: row[name] for name in WRITABLE_FIELDS} == values
