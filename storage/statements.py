"""The SQL that several of the store's use cases share (each use case's own lives in its module),
and the rule all of it keeps: each statement built once per shape, its values bound when it runs.

SQLAlchemy walks every statement object it has not seen before to make its cache key, and for
these statements that walk cost as much CPU as the rest of the call (measured: a get built per
call took 370 us of CPU, built once 190 us). So nothing here holds a request's value: each
value travels as a bound parameter, and each shape (which filters, which sort, which fields a
write sets) is built on first use and kept; the shapes are finitely many, so the cache is too.

Bound parameters are named apart from every column (`owner`, not `user_id`): SQLAlchemy keeps
column names for the values of INSERT and UPDATE.
"""

from __future__ import annotations

from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    ColumnElement,
    Insert,
    Update,
    bindparam,
    case,
    false,
    insert,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from storage.fields import NAMES
from storage.models import TaskRow, UTCDateTime
from storage.records import IfMatch

_TASKS = TaskRow.__table__
# Every column of a task, what reads and RETURNING clauses select: first a Task's fields in their
# declared order (Task.of reads a row by position), then the rest.
COLUMNS = (
    *(_TASKS.c[name] for name in NAMES),
    *(column for column in _TASKS.columns if column.name not in NAMES),
)
# The shape of a write's If-Match condition: any version, some versions, or none at all.
VersionCheck = Literal["any", "versions", "none"]
# How a write sets completion: not at all, to done, to not done, or to its opposite.
Completion = Literal["keep", "complete", "reopen", "toggle"]

OWNER = bindparam("owner", type_=TaskRow.user_id.type)
TASK_ID = bindparam("task_id", type_=TaskRow.id.type)
NOW = bindparam("now", type_=UTCDateTime())
NEW_SEQ = bindparam("new_seq", type_=TaskRow.seq.type)
# The oldest deletion still kept: now minus the retention period.
HORIZON = bindparam("horizon", type_=UTCDateTime())


# The owner's tasks that are not deleted (a deleted task is invisible but to restore).
LIVE_TASKS = (TaskRow.user_id == OWNER, TaskRow.deleted_at.is_(None))
# One of them, by id.
ONE_LIVE_TASK = (TaskRow.id == TASK_ID, *LIVE_TASKS)


def version_condition(check: VersionCheck) -> tuple[ColumnElement[bool], ...]:
    """The condition a write's If-Match puts on the task's version (`versions` if some)."""
    if check == "any":
        return ()
    if check == "none":
        return (false(),)
    return (TaskRow.version.in_(bindparam("versions", expanding=True)),)


# A writer that read the clock first may commit last: updated_at must not go back.
NOT_BEFORE_NOW = case((TaskRow.updated_at > NOW, TaskRow.updated_at), else_=NOW)

PING = select(1)

TASK = select(*COLUMNS).where(*ONE_LIVE_TASK)

# Run with a task's column values (and `seq`) as parameters.
INSERT_TASK = insert(TaskRow).returning(*COLUMNS)


@cache
def insert_ignoring_conflict(dialect: str, table: type[Any], index: tuple[str, ...]) -> Insert:
    """INSERT ... ON CONFLICT DO NOTHING, run with the row's column values as parameters."""
    insert_for = pg_insert if dialect == "postgresql" else sqlite_insert
    return insert_for(table).on_conflict_do_nothing(index_elements=list(index))


@cache
def update_task(fields: tuple[str, ...], completion: Completion, check: VersionCheck) -> Update:
    """Set `fields` (each from the parameter `new_<field>`) and completion, bump the version
    and take `new_seq`; the ownership check, the precondition, the read and the check that the
    write changes something are this statement (it matches no row when nothing would change)."""
    return task_update(fields, completion, check, NEW_SEQ)


def task_update(
    fields: tuple[str, ...], completion: Completion, check: VersionCheck, seq: ColumnElement[int]
) -> Update:
    """update_task's statement, the task's change number taken from `seq`."""
    values: dict[str, Any] = {
        name: bindparam(_new(name), type_=TaskRow.__table__.c[name].type) for name in fields
    }
    changes = [TaskRow.__table__.c[name].is_distinct_from(value) for name, value in values.items()]
    if completion == "toggle":
        changes.append(true())
    elif completion != "keep":
        changes.append(TaskRow.completed.is_(completion == "reopen"))
    if completion == "toggle":
        values["completed"] = ~TaskRow.completed
        values["completed_at"] = case((TaskRow.completed, None), else_=NOW)
    elif completion == "complete":
        values["completed"] = True
        # Completing an already completed task keeps the moment it was first completed.
        values["completed_at"] = case((TaskRow.completed, TaskRow.completed_at), else_=NOW)
    elif completion == "reopen":
        values["completed"] = False
        values["completed_at"] = None
    values |= {"updated_at": NOT_BEFORE_NOW, "version": TaskRow.version + 1, "seq": seq}
    return (
        update(TaskRow)
        .where(*ONE_LIVE_TASK, *version_condition(check), or_(false(), *changes))
        .values(values)
        .returning(*COLUMNS)
    )


@cache
def delete_task(check: VersionCheck) -> Update:
    """Make the task a tombstone at `now`."""
    return (
        update(TaskRow)
        .where(*ONE_LIVE_TASK, *version_condition(check))
        .values(deleted_at=NOW, version=TaskRow.version + 1, seq=NEW_SEQ)
        .returning(TaskRow.completed)
    )


def new_values(values: dict[str, Any]) -> dict[str, Any]:
    """update_task's parameters for the new column values it sets."""
    return {_new(name): value for name, value in values.items()}


def _new(name: str) -> str:
    return f"new_{name}"


def task_params(user_id: str, task_id: int) -> dict[str, Any]:
    """The parameters that name one task of one owner (OWNER, TASK_ID)."""
    return {"owner": user_id, "task_id": task_id}


def version_check(if_match: IfMatch | None) -> tuple[VersionCheck, dict[str, Any]]:
    """The shape of a write's If-Match condition, and its values."""
    if if_match is None or if_match.versions is None:
        return "any", {}
    if not if_match.versions:
        return "none", {}
    return "versions", {"versions": sorted(if_match.versions)}
