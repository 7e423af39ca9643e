"""The task store's SQL, each statement built once per shape, its values bound when it runs.

SQLAlchemy walks every statement object it has not seen before to make its cache key, and for
these statements that walk cost as much CPU as the rest of the call (measured: a get built per
call took 370 us of CPU, built once 190 us). So nothing here holds a request's value: each
value travels as a bound parameter, and each shape (which filters, which sort, which fields a
write sets) is built on first use and kept; the shapes are finitely many, so the cache is too.

Bound parameters are named apart from every column (`owner`, not `user_id`): SQLAlchemy keeps
column names for the values of INSERT and UPDATE.
"""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any, Literal

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Insert,
    Integer,
    Select,
    String,
    Update,
    and_,
    bindparam,
    case,
    delete,
    exists,
    false,
    func,
    insert,
    literal,
    or_,
    select,
    true,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql import type_coerce

from storage.cursors import Position
from storage.fields import NAMES
from storage.models import (
    StreamTicketRow,
    TaskOwnerRow,
    TaskRow,
    UTCDateTime,
)

_TASKS = TaskRow.__table__
# Every column of a task, what reads and RETURNING clauses select: first a Task's fields in their
# declared order (Task.of reads a row by position), then the rest.
COLUMNS = (
    *(_TASKS.c[name] for name in NAMES),
    *(column for column in _TASKS.columns if column.name not in NAMES),
)
# The character that escapes `%`, `_` and itself in a search term (see like_term).
ESCAPE = "/"

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

# Whether a task is completed, before a write that sets completion (under the owner's lock).
TASK_COMPLETED = select(TaskRow.completed).where(*ONE_LIVE_TASK)
OWNER_FOR_LIST = select(
    TaskOwnerRow.change_seq, TaskOwnerRow.task_count, TaskOwnerRow.completed_count
).where(TaskOwnerRow.user_id == OWNER)

# Run with a task's column values (and `seq`) as parameters.
INSERT_TASK = insert(TaskRow).returning(*COLUMNS)

_remind_at = bindparam("remind_at", type_=UTCDateTime())
# The columns a write derives from the others (TaskStore._derive_fields): a series for a
# recurring task, and the reminder time, whose delivery (and any claim of it) is armed again when
# it moves.
SET_DERIVED_FIELDS = (
    update(TaskRow)
    .where(*ONE_LIVE_TASK)
    .values(
        series_id=bindparam("series", type_=TaskRow.series_id.type),
        remind_at=_remind_at,
        reminded_at=case(
            (TaskRow.remind_at.is_distinct_from(_remind_at), None), else_=TaskRow.reminded_at
        ),
        reminder_claimed_until=case(
            (TaskRow.remind_at.is_distinct_from(_remind_at), None),
            else_=TaskRow.reminder_claimed_until,
        ),
    )
    .returning(*COLUMNS)
)
# A completed occurrence names the next one (or, undone, no longer does).
LINK_NEXT = (
    update(TaskRow)
    .where(*ONE_LIVE_TASK)
    .values(next_task_id=bindparam("next_task", type_=TaskRow.next_task_id.type))
    .returning(*COLUMNS)
)

# Reminders due and not yet delivered (the `?reminder=due` listing, and what a claim may take
# when no other process's lease holds it: storage/reminders.py).
REMINDER_DUE = (
    TaskRow.remind_at <= NOW,
    TaskRow.reminded_at.is_(None),
    TaskRow.deleted_at.is_(None),
    TaskRow.completed.is_(False),
)


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
    values |= {"updated_at": NOT_BEFORE_NOW, "version": TaskRow.version + 1, "seq": NEW_SEQ}
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


RESTORE_TASK = (
    update(TaskRow)
    .where(
        TaskRow.id == TASK_ID,
        TaskRow.user_id == OWNER,
        TaskRow.deleted_at >= HORIZON,
    )
    .values(deleted_at=None, version=TaskRow.version + 1, seq=NEW_SEQ, updated_at=NOT_BEFORE_NOW)
    .returning(*COLUMNS)
)

# Which filters a list has, as opposed to their values (the parameters of the same names).
Filters = tuple[str, ...]


@cache
def list_page(
    dialect: str, status: str, filters: Filters, sort: str, order: str, *, after: bool
) -> Select[Any]:
    """One page of the owner's tasks, `limit` rows, after the position `after_*` if `after`.

    The sort keys are selected too: a cursor must carry the values the database compares,
    which Python could not always recompute (lower() and collations differ).
    """
    keys = sort_keys(sort)
    ordering = [getattr(column, order)() for column in (*keys, TaskRow.id)]
    conditions = list(_list_filters(dialect, status, filters))
    if after:
        row = tuple_(*keys, TaskRow.id)
        here = tuple_(*after_parameters(keys), bindparam(_AFTER_ID, type_=TaskRow.id.type))
        conditions.append(row > here if order == "asc" else row < here)
    return select(*COLUMNS, *keys).where(*conditions).order_by(*ordering).limit(bindparam("limit"))


@cache
def list_total(dialect: str, status: str, filters: Filters) -> Select[Any]:
    return select(func.count()).select_from(TaskRow).where(*_list_filters(dialect, status, filters))


def after_parameters(
    keys: tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...],
) -> list[BindParameter[Any]]:
    """The position's key values, one parameter a key (`after_0`, `after_1`, ...)."""
    return [bindparam(_after(n), type_=key.type) for n, key in enumerate(keys)]


def seek_values(position: Position) -> dict[str, Any]:
    """The values of list_page's seek condition (with `after`), for a page after `position`."""
    keys = {_after(n): value for n, value in enumerate(position.keys)}
    return keys | {_AFTER_ID: position.id}


def new_values(values: dict[str, Any]) -> dict[str, Any]:
    """update_task's parameters for the new column values it sets."""
    return {_new(name): value for name, value in values.items()}


_AFTER_ID = "after_id"


def _after(n: int) -> str:
    return f"after_{n}"


def _new(name: str) -> str:
    return f"new_{name}"


# Stands in for a missing due date among undated tasks only (they sort after a flag), so any
# instant that every driver can read back in any session time zone will do.
_UNDATED = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


def sort_keys(sort: str) -> tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...]:
    """The expressions a sort orders by, before the id that breaks ties."""
    if sort == "created":
        return (TaskRow.created_at,)
    if sort == "updated":
        return (TaskRow.updated_at,)
    if sort == "title":
        # People expect "apple, Banana, cherry", not every capital before every small letter.
        return (func.lower(TaskRow.title),)
    if sort == "priority":
        return (TaskRow.priority,)
    if sort == "due_date":
        # Undated tasks last ascending (first descending), whatever dates the others have.
        undated = case((TaskRow.due_date.is_(None), 1), else_=0)
        return (undated, func.coalesce(TaskRow.due_date, literal(_UNDATED, UTCDateTime)))
    raise ValueError(f"unknown sort {sort!r}")


def like_term(text: str) -> str:
    """A search term as LIKE takes it literally."""
    return text.replace(ESCAPE, ESCAPE * 2).replace("%", ESCAPE + "%").replace("_", ESCAPE + "_")


def _list_filters(dialect: str, status: str, filters: Filters) -> list[ColumnElement[bool]]:
    conditions = list(LIVE_TASKS)
    if status != "all":
        conditions.append(TaskRow.completed.is_(status == "completed"))
    if "priority" in filters:
        conditions.append(TaskRow.priority == bindparam("priority", type_=TaskRow.priority.type))
    if "tag" in filters:
        conditions.append(_has_tag(dialect))
    if "q" in filters:
        term = bindparam("q", type_=TaskRow.title.type)
        conditions.append(
            TaskRow.title.icontains(term, escape=ESCAPE)
            | TaskRow.description.icontains(term, escape=ESCAPE)
        )
    if "due_before" in filters:
        conditions.append(TaskRow.due_date < bindparam("due_before", type_=UTCDateTime()))
    if "due_after" in filters:
        conditions.append(TaskRow.due_date > bindparam("due_after", type_=UTCDateTime()))
    if "now" in filters:
        conditions.extend(REMINDER_DUE)
    return conditions


def _has_tag(dialect: str) -> ColumnElement[bool]:
    tag = bindparam("tag", type_=String())
    if dialect == "postgresql":
        return type_coerce(TaskRow.tags, JSONB).contains(func.jsonb_build_array(tag))
    elements = func.json_each(TaskRow.tags).table_valued("value")
    return exists().select_from(elements).where(elements.c.value == tag)


def _tag_elements(dialect: str) -> Any:
    """Each tag of a task as a row (`value`), joined to the task's row."""
    if dialect == "postgresql":
        return func.jsonb_array_elements_text(type_coerce(TaskRow.tags, JSONB)).table_valued(
            "value"
        )
    return func.json_each(TaskRow.tags).table_valued("value")


@cache
def tag_counts(dialect: str, *, after: bool) -> Select[Any]:
    """A page of the owner's tags, most used first, `limit` rows, after `after_uses` and
    `after_tag` if `after`; with each tag's pending and completed counts."""
    elements = _tag_elements(dialect)
    tag = elements.c.value
    uses = func.count()
    completed = func.coalesce(func.sum(case((TaskRow.completed, 1), else_=0)), 0)
    page = (
        select(tag.label("tag"), uses.label("uses"), completed.label("completed"))
        .select_from(TaskRow)
        .join(elements, true())
        .where(*LIVE_TASKS)
        .group_by(tag)
    )
    if after:
        after_uses = bindparam("after_uses", type_=Integer())
        after_tag = bindparam("after_tag", type_=String())
        page = page.having(or_(uses < after_uses, and_(uses == after_uses, tag > after_tag)))
    return page.order_by(uses.desc(), tag.asc()).limit(bindparam("limit"))


@cache
def tag_total(dialect: str) -> Select[Any]:
    elements = _tag_elements(dialect)
    tags = (
        select(elements.c.value)
        .select_from(TaskRow)
        .join(elements, true())
        .where(*LIVE_TASKS)
        .distinct()
        .subquery()
    )
    return select(func.count()).select_from(tags)


@cache
def tag_count(dialect: str) -> Select[Any]:
    """How many of the owner's tasks carry `tag`, and how many of those are completed."""
    completed = func.coalesce(func.sum(case((TaskRow.completed, 1), else_=0)), 0)
    return select(func.count().label("uses"), completed.label("completed")).where(
        *LIVE_TASKS, _has_tag(dialect)
    )


@cache
def tasks_tagged(dialect: str) -> Select[int, list[str]]:
    return (
        select(TaskRow.id, TaskRow.tags).where(*LIVE_TASKS, _has_tag(dialect)).order_by(TaskRow.id)
    )


INSERT_TICKET = insert(StreamTicketRow)
# Redeeming deletes: a ticket is good once, whichever process sees it first.
REDEEM_TICKET = (
    delete(StreamTicketRow)
    .where(
        StreamTicketRow.digest == bindparam("digest", type_=String()),
        StreamTicketRow.expires_at > NOW,
    )
    .returning(StreamTicketRow.user_id, StreamTicketRow.credential_expires_at)
)
DELETE_EXPIRED_TICKETS = delete(StreamTicketRow).where(StreamTicketRow.expires_at <= NOW)
