"""The task store: every read and write of tasks, each scoped to the owner's user id.

TaskStore is the one entry point; each use case lives in a module of its own:

- creation.py: create (with an idempotency key: idempotency.py)
- updates.py: update, set_completed (a no-op writes nothing)
- deletion.py: delete, restore
- listing.py: get, list_tasks
- feed.py: changes, latest_changes
- tags.py: list_tags, rename_tag
- purge.py: purge
- series.py: a recurring task's next occurrence; derived.py: series id and remind_at
- quota.py: the owner's row, which every write records itself in first
- one_trip.py: on PostgreSQL, that record and the task's write in one statement
- unit_of_work.py: what one write holds, from its first statement to its commit
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import Engine

from storage.creation import Creation
from storage.deletion import Deletion
from storage.feed import Feed
from storage.listing import Listing
from storage.purge import Purge
from storage.quota import Quota
from storage.records import (
    Changes,
    Created,
    IfMatch,
    Page,
    Purged,
    TagCount,
    TagPage,
    Task,
    TaskQuery,
)
from storage.reminders import DEFAULT_LEASE, ReminderStore
from storage.series import Series
from storage.statements import PING
from storage.tags import Tags
from storage.unit_of_work import Writes
from storage.updates import Updates


class TaskStore:
    """One connection and one transaction per call; nothing outlives the call. Statements are
    SQLAlchemy Core on the ORM's tables, kept with the use case that runs them (the shared ones
    in storage/statements.py), built once per shape: rows
    come back as plain rows, without the ORM's per-object bookkeeping, since a call reads or
    writes and then answers.

    Every write locks the owner's task_owners row first (always in that order, so writers never
    deadlock) and takes the user's next change sequence number under that lock. The one
    exception is the claim of due reminders (storage/reminders.py): a single statement that
    marks task rows only, skipping any row another transaction holds, so it never waits.
    """

    def __init__(
        self,
        engine: Engine,
        *,
        quota: int,
        retention: dt.timedelta = dt.timedelta(days=30),
        idempotency_ttl: dt.timedelta = dt.timedelta(hours=24),
        on_change: Callable[[str, int], None] | None = None,
    ) -> None:
        """`on_change(user_id, seq)` is called after each write commits, in this process. On
        PostgreSQL each write also sends the same on the change channel, to every process
        that listens (storage/notifications.py), whatever this one does."""
        dialect = engine.dialect.name
        writes = Writes(engine, on_change)
        owner_rows = Quota(quota, dialect)
        purge = Purge(engine, writes, owner_rows, retention)
        creation = Creation(writes, owner_rows, dialect, idempotency_ttl)
        listing = Listing(engine)
        self._engine = engine
        self._creation = creation
        self._updates = Updates(writes, owner_rows, Series(creation, owner_rows, purge))
        self._deletion = Deletion(writes, owner_rows, purge, listing)
        self._listing = listing
        self._feed = Feed(engine)
        self._tags = Tags(engine, writes, owner_rows)
        self._purge = purge

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self._engine.begin() as connection:
            connection.execute(PING)

    def create(
        self, user_id: str, fields: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Created:
        """Create a task from a complete set of writable fields, at most once per (user,
        idempotency key) while the key lives."""
        return self._creation.create(user_id, fields, idempotency_key=idempotency_key)

    def get(self, user_id: str, task_id: int) -> Task:
        return self._listing.get(user_id, task_id)

    def update(
        self,
        user_id: str,
        task_id: int,
        fields: Mapping[str, Any],
        *,
        if_match: IfMatch | None = None,
    ) -> Task:
        """Change only the given fields; None clears a nullable field."""
        return self._updates.update(user_id, task_id, fields, if_match=if_match)

    def set_completed(
        self,
        user_id: str,
        task_id: int,
        completed: bool | None,
        *,
        if_match: IfMatch | None = None,
    ) -> Task:
        """Set completion, or toggle it when `completed` is None."""
        return self._updates.set_completed(user_id, task_id, completed, if_match=if_match)

    def delete(self, user_id: str, task_id: int, *, if_match: IfMatch | None = None) -> None:
        """Delete a task, keeping it restorable (a tombstone) for the retention period."""
        self._deletion.delete(user_id, task_id, if_match=if_match)

    def restore(self, user_id: str, task_id: int) -> Task:
        """Bring back a deleted task within the retention period; a live task is returned as is."""
        return self._deletion.restore(user_id, task_id)

    def list_tasks(self, user_id: str, query: TaskQuery) -> Page:
        return self._listing.list_tasks(user_id, query)

    def changes(self, user_id: str, cursor: str | None, limit: int) -> Changes:
        """The user's writes after `cursor` (from the beginning without one), oldest first."""
        return self._feed.changes(user_id, cursor, limit)

    def latest_changes(self, user_ids: Collection[str]) -> dict[str, int]:
        """Each user's latest change number (users without a task are left out)."""
        return self._feed.latest_changes(user_ids)

    def reminders(self, lease: dt.timedelta = DEFAULT_LEASE) -> ReminderStore:
        """The claims and deliveries of the reminders of this store's tasks."""
        return ReminderStore(self._engine, lease)

    def list_tags(self, user_id: str, limit: int, cursor: str | None = None) -> TagPage:
        return self._tags.list_tags(user_id, limit, cursor)

    def rename_tag(self, user_id: str, tag: str, to: str) -> TagCount:
        """Put `to` in place of `tag` on every task of the user's that carries it, in one
        transaction, each task written (and in the feed) once; TagNotFound if none does."""
        return self._tags.rename_tag(user_id, tag, to)

    def purge(self, now: dt.datetime | None = None) -> Purged:
        """Remove tombstones past the retention period and idempotency keys past their life."""
        return self._purge.purge(now)
