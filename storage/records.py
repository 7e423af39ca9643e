"""What the storage API takes and returns: plain values, no rows and no sessions."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row

from storage.models import PRIORITY_NAMES


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which made
# building a page of 50 tasks cost a twentieth of a list request's CPU. Nothing mutates one.
@dataclass(slots=True)
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
    # Counts the task's writes: what its ETag is made of.
    version: int
    recurrence: str | None
    timezone: str
    series_id: int | None
    next_task_id: int | None
    remind_before: dt.timedelta | None
    remind_at: dt.datetime | None

    @classmethod
    def of(cls, row: Row[*tuple[Any, ...]]) -> Task:
        """A task from a row that starts with statements.COLUMNS, read by position: a Row's
        attribute access costs twenty times as much."""
        (
            id_,
            user_id,
            title,
            description,
            completed,
            priority,
            tags,
            due_date,
            created_at,
            updated_at,
            completed_at,
            version,
            recurrence,
            timezone,
            series_id,
            next_task_id,
            remind_before,
            remind_at,
            *_rest,
        ) = row
        return cls(
            id=id_,
            user_id=user_id,
            title=title,
            description=description,
            completed=completed,
            priority=PRIORITY_NAMES[priority],
            tags=list(tags),
            due_date=due_date,
            created_at=created_at,
            updated_at=updated_at,
            completed_at=completed_at,
            version=version,
            recurrence=recurrence,
            timezone=timezone,
            series_id=series_id,
            next_task_id=next_task_id,
            remind_before=None if remind_before is None else dt.timedelta(seconds=remind_before),
            remind_at=remind_at,
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
    # Only tasks whose reminder is due and not yet delivered (at `now`).
    reminder_due: bool = False


@dataclass(frozen=True)
class Page:
    tasks: list[Task]
    total: int
    next_cursor: str | None
    # The user's change sequence number when the page was read: any write since changes it.
    as_of: int


@dataclass(frozen=True)
class IfMatch:
    """A write's precondition: the versions the task may have; None means any (it exists)."""

    versions: frozenset[int] | None


@dataclass(frozen=True)
class Created:
    task: Task
    # The task was made by an earlier request with the same idempotency key.
    replayed: bool


@dataclass(frozen=True)
class Tombstone:
    """A deleted task, restorable until it is purged."""

    id: int
    deleted_at: dt.datetime


@dataclass(frozen=True)
class Changes:
    """One page of the changes feed: each task once, at its latest state, in commit order."""

    changes: list[Task | Tombstone]
    cursor: str
    has_more: bool
    # The cursor just after each change, in the same order: where a stream resumes.
    positions: list[str]


@dataclass(frozen=True)
class Purged:
    tasks: int
    idempotency_keys: int


@dataclass(frozen=True)
class TagCount:
    tag: str
    pending: int
    completed: int


@dataclass(frozen=True)
class TagPage:
    tags: list[TagCount]
    total: int
    next_cursor: str | None
