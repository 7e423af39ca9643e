"""The task store: every read and write of tasks, each scoped to the owner's user id."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Engine, case, delete, exists, func, select, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker
from sqlalchemy.sql import type_coerce

from storage.errors import QuotaExceeded, TaskNotFound
from storage.models import PRIORITY_NAMES, PRIORITY_RANKS, TaskOwnerRow, TaskRow
from storage.paging import Position, sort_keys


@dataclass(frozen=True)
class Task:
    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    priority: str
    tags: list[str]
    due_date: dt.datetime | None
    created_at: dt.datetime
    updated_at: dt.datetime
    completed_at: dt.datetime | None

    @classmethod
    def of(cls, row: TaskRow) -> Task:
        return cls(
            id=row.id,
            user_id=row.user_id,
            title=row.title,
            description=row.description,
            completed=row.completed,
            priority=PRIORITY_NAMES[row.priority],
            tags=list(row.tags),
            due_date=row.due_date,
            created_at=row.created_at,
            updated_at=row.updated_at,
            completed_at=row.completed_at,
        )


@dataclass(frozen=True)
class TaskQuery:
    status: str = "all"
    priority: str | None = None
    tag: str | None = None
    q: str | None = None
    due_before: dt.datetime | None = None
    due_after: dt.datetime | None = None
    sort: str = "created"
    order: str = "desc"
    limit: int = 100
    cursor: str | None = None


@dataclass(frozen=True)
class Page:
    tasks: list[Task]
    total: int
    next_cursor: str | None


# The fields a client may write, each with how its value is stored. This explicit list is the
# only way request data reaches a row (no Model(**body)); a test keeps it equal to the spec's.
WRITABLE_FIELDS: dict[str, Callable[[Any], Any]] = {
    "title": lambda value: value.strip(),
    "description": lambda value: value,
    "completed": bool,
    "priority": lambda value: PRIORITY_RANKS[value],
    "tags": list,
    "due_date": lambda value: value,
}


def _column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    unknown = set(fields) - set(WRITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    return {
        name: None if value is None else WRITABLE_FIELDS[name](value)
        for name, value in fields.items()
    }


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class TaskStore:
    """One session and one transaction per call; nothing outlives the call."""

    def __init__(self, engine: Engine, *, quota: int) -> None:
        self._sessions = sessionmaker(engine, expire_on_commit=False)
        self._dialect = engine.dialect.name
        self._quota = quota

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self._sessions.begin() as session:
            session.execute(select(1))

    def create(self, user_id: str, fields: Mapping[str, Any]) -> Task:
        """Create a task from a complete set of writable fields."""
        values = _column_values(fields)
        missing = set(WRITABLE_FIELDS) - set(values)
        if missing:
            raise ValueError(f"missing fields: {sorted(missing)}")
        now = _now()
        row = TaskRow(
            user_id=user_id,
            title=values["title"],
            description=values["description"],
            completed=values["completed"],
            priority=values["priority"],
            tags=values["tags"],
            due_date=values["due_date"],
            created_at=now,
            updated_at=now,
            completed_at=now if values["completed"] else None,
        )
        with self._sessions.begin() as session:
            self._count(session, user_id, +1)
            session.add(row)
            session.flush()
            return Task.of(row)

    def get(self, user_id: str, task_id: int) -> Task:
        with self._sessions.begin() as session:
            row = session.scalars(
                select(TaskRow).where(TaskRow.id == task_id, TaskRow.user_id == user_id)
            ).one_or_none()
            if row is None:
                raise TaskNotFound(task_id)
            return Task.of(row)

    def update(self, user_id: str, task_id: int, fields: Mapping[str, Any]) -> Task:
        """Change only the given fields; None clears a nullable field."""
        values: dict[str, Any] = _column_values(fields)
        now = _now()
        if "completed" in values:
            values["completed_at"] = _completed_at(values["completed"], now)
        values["updated_at"] = now
        return self._update(user_id, task_id, values)

    def set_completed(self, user_id: str, task_id: int, completed: bool | None) -> Task:
        """Set completion, or toggle it when `completed` is None."""
        now = _now()
        if completed is None:
            values = {
                "completed": ~TaskRow.completed,
                "completed_at": case((TaskRow.completed, None), else_=now),
            }
        else:
            values = {"completed": completed, "completed_at": _completed_at(completed, now)}
        return self._update(user_id, task_id, {**values, "updated_at": now})

    def delete(self, user_id: str, task_id: int) -> None:
        with self._sessions.begin() as session:
            deleted = session.execute(
                delete(TaskRow)
                .where(TaskRow.id == task_id, TaskRow.user_id == user_id)
                .returning(TaskRow.id)
            ).one_or_none()
            if deleted is None:
                raise TaskNotFound(task_id)
            self._count(session, user_id, -1)

    def list(self, user_id: str, query: TaskQuery) -> Page:
        filters = [TaskRow.user_id == user_id, *self._filters(query)]
        keys = sort_keys(query.sort)
        direction = "asc" if query.order == "asc" else "desc"
        ordering = [getattr(column, direction)() for column in (*keys, TaskRow.id)]
        # The keys are selected too: a cursor must carry the values the database compares,
        # which Python could not always recompute (lower() and collations differ).
        page = select(TaskRow, *keys).where(*filters).order_by(*ordering).limit(query.limit + 1)
        if query.cursor is not None:
            page = page.where(Position.decode(query.cursor, query.sort, query.order).after())
        with self._sessions.begin() as session:
            rows = list(session.execute(page).all())
            total = session.scalar(select(func.count()).select_from(TaskRow).where(*filters))
        next_cursor = None
        if len(rows) > query.limit:
            rows = rows[: query.limit]
            last = rows[-1]
            position = Position(query.sort, query.order, tuple(last[1:]), last[0].id)
            next_cursor = position.encode()
        return Page(
            tasks=[Task.of(row[0]) for row in rows], total=total or 0, next_cursor=next_cursor
        )

    def _count(self, session: Session, user_id: str, change: int) -> None:
        """Move the owner's task count by `change`, within the quota, in the caller's transaction.

        The conditional UPDATE is the check and the write in one: concurrent creates cannot
        both take the last place (on PostgreSQL the row lock also queues one user's creates).
        """
        owner = {"user_id": user_id, "task_count": 0}
        upsert = (pg_insert if self._dialect == "postgresql" else sqlite_insert)(TaskOwnerRow)
        session.execute(upsert.values(owner).on_conflict_do_nothing(index_elements=["user_id"]))
        # Only a growing count is held to the quota: a user over a lowered quota may delete.
        within = TaskOwnerRow.task_count + change <= self._quota if change > 0 else True
        counted = session.execute(
            update(TaskOwnerRow)
            .where(TaskOwnerRow.user_id == user_id, within)
            .values(task_count=TaskOwnerRow.task_count + change)
            .returning(TaskOwnerRow.task_count)
        ).one_or_none()
        if counted is None:
            raise QuotaExceeded(self._quota)

    def _update(self, user_id: str, task_id: int, values: dict[str, Any]) -> Task:
        # One UPDATE ... RETURNING: the ownership check, the write and the read are one statement,
        # so no concurrent writer can slip between them.
        now = values["updated_at"]
        # A writer that read the clock first may commit last: updated_at must not go back.
        values["updated_at"] = case((TaskRow.updated_at > now, TaskRow.updated_at), else_=now)
        statement = (
            update(TaskRow)
            .where(TaskRow.id == task_id, TaskRow.user_id == user_id)
            .values(values)
            .returning(TaskRow)
            .execution_options(synchronize_session=False)
        )
        with self._sessions.begin() as session:
            row = session.scalars(statement).one_or_none()
            if row is None:
                raise TaskNotFound(task_id)
            return Task.of(row)

    def _filters(self, query: TaskQuery) -> list[ColumnElement[bool]]:
        filters: list[ColumnElement[bool]] = []
        if query.status != "all":
            filters.append(TaskRow.completed.is_(query.status == "completed"))
        if query.priority is not None:
            filters.append(TaskRow.priority == PRIORITY_RANKS[query.priority])
        if query.tag is not None:
            filters.append(self._has_tag(query.tag))
        if query.q is not None:
            filters.append(
                TaskRow.title.icontains(query.q, autoescape=True)
                | TaskRow.description.icontains(query.q, autoescape=True)
            )
        if query.due_before is not None:
            filters.append(TaskRow.due_date < query.due_before)
        if query.due_after is not None:
            filters.append(TaskRow.due_date > query.due_after)
        return filters

    def _has_tag(self, tag: str) -> ColumnElement[bool]:
        if self._dialect == "postgresql":
            return type_coerce(TaskRow.tags, JSONB).contains([tag])
        elements = func.json_each(TaskRow.tags).table_valued("value")
        return exists().select_from(elements).where(elements.c.value == tag)


def _completed_at(completed: bool, now: dt.datetime) -> Any:
    # Completing an already completed task keeps the moment it was first completed.
    return case((TaskRow.completed, TaskRow.completed_at), else_=now) if completed else None
