"""Reading tasks: one by id, and a list's pages (filters, sorts, keyset cursors and totals)."""

from __future__ import annotations

import datetime as dt
from functools import cache
from typing import Any

from sqlalchemy import (
    BindParameter,
    ColumnElement,
    Engine,
    Select,
    bindparam,
    case,
    func,
    literal,
    select,
    tuple_,
)
from sqlalchemy.orm import InstrumentedAttribute

from storage import clock
from storage.cursors import Position
from storage.errors import TaskNotFound
from storage.models import PRIORITY_RANKS, TaskOwnerRow, TaskRow, UTCDateTime
from storage.quota import total_by_status
from storage.records import Page, Task, TaskQuery
from storage.reminders import REMINDER_DUE
from storage.statements import COLUMNS, LIVE_TASKS, OWNER, TASK, task_params
from storage.tags import has_tag

# The character that escapes `%`, `_` and itself in a search term (see like_term).
ESCAPE = "/"

# Which filters a list has, as opposed to their values (the parameters of the same names).
Filters = tuple[str, ...]

_OWNER_FOR_LIST = select(
    TaskOwnerRow.change_seq, TaskOwnerRow.task_count, TaskOwnerRow.completed_count
).where(TaskOwnerRow.user_id == OWNER)


@cache
def _list_page(
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
        here = tuple_(*_after_parameters(keys), bindparam(_AFTER_ID, type_=TaskRow.id.type))
        conditions.append(row > here if order == "asc" else row < here)
    return select(*COLUMNS, *keys).where(*conditions).order_by(*ordering).limit(bindparam("limit"))


@cache
def _list_total(dialect: str, status: str, filters: Filters) -> Select[Any]:
    return select(func.count()).select_from(TaskRow).where(*_list_filters(dialect, status, filters))


def _after_parameters(
    keys: tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...],
) -> list[BindParameter[Any]]:
    """The position's key values, one parameter a key (`after_0`, `after_1`, ...)."""
    return [bindparam(_after(n), type_=key.type) for n, key in enumerate(keys)]


def _seek_values(position: Position) -> dict[str, Any]:
    """The values of _list_page's seek condition (with `after`), for a page after `position`."""
    keys = {_after(n): value for n, value in enumerate(position.keys)}
    return keys | {_AFTER_ID: position.id}


_AFTER_ID = "after_id"


def _after(n: int) -> str:
    return f"after_{n}"


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
        conditions.append(has_tag(dialect))
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


def filter_values(query: TaskQuery) -> tuple[Filters, dict[str, Any]]:
    """Which of the list's filters are set, and their values as the statement takes them."""
    values: dict[str, Any] = {}
    if query.priority is not None:
        values["priority"] = PRIORITY_RANKS[query.priority]
    if query.tag is not None:
        values["tag"] = query.tag
    if query.q is not None:
        values["q"] = like_term(query.q)
    if query.due_before is not None:
        values["due_before"] = query.due_before
    if query.due_after is not None:
        values["due_after"] = query.due_after
    if query.reminder_due:
        values["now"] = clock.utc_now()
    return tuple(values), values


class Listing:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name

    def get(self, user_id: str, task_id: int) -> Task:
        with self._engine.begin() as connection:
            row = connection.execute(TASK, task_params(user_id, task_id)).one_or_none()
            if row is None:
                raise TaskNotFound(task_id)
            return Task.of(row)

    def list_tasks(self, user_id: str, query: TaskQuery) -> Page:
        filters, values = filter_values(query)
        shape = (self._dialect, query.status, filters)
        after = (
            Position.decode(query.cursor, query.sort, query.order)
            if query.cursor is not None
            else None
        )
        page = _list_page(*shape, query.sort, query.order, after=after is not None)
        values |= {"owner": user_id}
        with self._engine.begin() as connection:
            # Read before the page: a write in between makes the page newer than `as_of`, which
            # costs a client one refetch, never a stale page under a current tag.
            owner = connection.execute(_OWNER_FOR_LIST, values).one_or_none()
            rows = list(
                connection.execute(
                    page,
                    values
                    | {"limit": query.limit + 1}
                    | (_seek_values(after) if after is not None else {}),
                ).all()
            )
            if owner is None:
                total = 0
            elif not filters:
                # The counts every write keeps: no count(*) over the tasks.
                total = total_by_status(query.status, owner.task_count, owner.completed_count)
            else:
                total = connection.scalar(_list_total(*shape), values)
        next_cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            last = rows[-1]
            keys = tuple(last[len(COLUMNS) :])
            next_cursor = Position(query.sort, query.order, keys, last.id).encode()
        return Page(
            tasks=[Task.of(row) for row in rows],
            total=total or 0,
            next_cursor=next_cursor,
            as_of=owner.change_seq if owner is not None else 0,
        )
