"""The task store: every read and write of tasks, each scoped to the owner's user id."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Collection, Mapping
from typing import Any

from sqlalchemy import Connection, Engine, Row

from storage import idempotency, snapshots
from storage import statements as sql
from storage.errors import (
    IdempotencyKeyReused,
    InvalidTask,
    PreconditionFailed,
    TaskNotFound,
)
from storage.feed import Feed
from storage.fields import WRITABLE_FIELDS, column_values, complete_column_values
from storage.idempotency import delete_expired_keys, forget_keys_past_quota
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
from storage.recurrence import next_occurrence
from storage.reminders import DEFAULT_LEASE, ReminderStore
from storage.statements import Completion, task_params, version_check
from storage.tags import Tags
from storage.unit_of_work import UnitOfWork, Writes

# The fields from which a write derives others (TaskStore._derive_fields).
DERIVED_FROM = frozenset({"due_date", "recurrence", "remind_before"})


# An idempotent create retries its claim when the key in its way vanished before it was read;
# each try deletes expired keys first, so the next one finds the place free.
_CLAIM_ATTEMPTS = 5


class TaskStore:
    """One connection and one transaction per call; nothing outlives the call. Statements are
    SQLAlchemy Core on the ORM's tables (storage/statements.py), built once per shape: rows
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
        self._engine = engine
        self._writes = Writes(engine, on_change)
        self._dialect = engine.dialect.name
        self._quota = Quota(quota, self._dialect)
        self._purge = Purge(engine, self._writes, quota, retention)
        self._feed = Feed(engine)
        self._listing = Listing(engine)
        self._tags = Tags(engine, self._writes, self._quota)
        self._retention = retention
        self._idempotency_ttl = idempotency_ttl

    def ping(self) -> None:
        """Raise unless the database answers."""
        with self._engine.begin() as connection:
            connection.execute(sql.PING)

    def create(
        self, user_id: str, fields: Mapping[str, Any], *, idempotency_key: str | None = None
    ) -> Created:
        """Create a task from a complete set of writable fields.

        With an idempotency key, at most once per (user, key) while the key lives: the key's
        row is claimed first, under its primary key, so a concurrent request with the same key
        waits for this transaction and then finds the row, and one task is made.
        """
        values = complete_column_values(fields)
        if idempotency_key is None:
            with self._writes.begin() as work:
                row = self._new_row(user_id, values, work.now)
                task = self._derive_fields(work, self._insert(work, row))
                work.commit()
                return Created(task, replayed=False)
        for _attempt in range(_CLAIM_ATTEMPTS):
            created = self._try_keyed_create(user_id, idempotency_key, values, fields)
            if created is not None:
                return created
        raise RuntimeError(f"could not claim idempotency key {idempotency_key!r}")

    def _try_keyed_create(
        self, user_id: str, key: str, values: dict[str, Any], fields: Mapping[str, Any]
    ) -> Created | None:
        """One try at an idempotent create; None if the key that was in the way expired (and
        was deleted by another request) before it could be read, so that a new try claims it."""
        asked = snapshots.fingerprint(fields)
        with self._writes.begin() as work:
            connection = work.connection
            delete_expired_keys(connection, user_id, work.now)
            expires_at = work.now + self._idempotency_ttl
            if idempotency.claim(connection, self._dialect, user_id, key, asked, expires_at):
                row = self._new_row(user_id, values, work.now)
                task = self._derive_fields(work, self._insert(work, row, key=key))
                idempotency.keep_response(connection, user_id, key, task)
                work.commit()
                return Created(task, replayed=False)
            # On PostgreSQL this reads a newer snapshot than the insert saw: the row may be gone.
            earlier = idempotency.earlier_request(connection, user_id, key)
            # The expired keys it deleted stay deleted.
            work.commit()
        if earlier is None:
            return None
        if earlier.fingerprint != asked:
            raise IdempotencyKeyReused(key)
        return Created(snapshots.load(earlier.response, Task), replayed=True)

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
        values: dict[str, Any] = column_values(fields)
        completed = values.pop("completed", None)
        completion: Completion = "keep" if completed is None else completion_of(completed)
        return self._update(user_id, task_id, values, completion, if_match)

    def set_completed(
        self,
        user_id: str,
        task_id: int,
        completed: bool | None,
        *,
        if_match: IfMatch | None = None,
    ) -> Task:
        """Set completion, or toggle it when `completed` is None."""
        completion: Completion = "toggle" if completed is None else completion_of(completed)
        return self._update(user_id, task_id, {}, completion, if_match)

    def delete(self, user_id: str, task_id: int, *, if_match: IfMatch | None = None) -> None:
        """Delete a task, keeping it restorable (a tombstone) for the retention period."""
        with self._writes.begin() as work:
            connection, now = work.connection, work.now
            counted = self._quota.record_write(work, user_id, -1, tombstones=+1)
            if counted is None:
                raise TaskNotFound(task_id)
            kind, versions = version_check(if_match)
            deleted = connection.execute(
                sql.delete_task(kind),
                task_params(user_id, task_id)
                | versions
                | {"now": now, "new_seq": counted.change_seq},
            ).one_or_none()
            if deleted is None:
                self._raise_unmatched(connection, user_id, task_id, if_match)
            elif deleted.completed:
                self._quota.record_write(work, user_id, 0, sequence=False, completed=-1)
            self._purge.after_delete(work, user_id, counted.tombstone_count)
            work.commit()

    def restore(self, user_id: str, task_id: int) -> Task:
        """Bring back a deleted task within the retention period; a live task is returned as is."""
        with self._writes.begin() as work:
            counted = self._quota.record_write(work, user_id, 0)
            if counted is None:
                raise TaskNotFound(task_id)
            horizon = work.now - self._retention
            row = work.connection.execute(
                sql.RESTORE_TASK,
                task_params(user_id, task_id)
                | {"horizon": horizon, "now": work.now, "new_seq": counted.change_seq},
            ).one_or_none()
            if row is not None:
                task = Task.of(row)
                completed = int(task.completed)
                self._quota.record_write(
                    work, user_id, +1, sequence=False, completed=completed, tombstones=-1
                )
                work.commit()
                return task
            # Nothing to restore: nothing may be written.
            work.rollback()
        # Live (say, a repeated undo) or gone for good: whatever get() finds.
        return self.get(user_id, task_id)

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

    def _new_row(self, user_id: str, values: Mapping[str, Any], now: dt.datetime) -> dict[str, Any]:
        """A new task's column values, from a complete set of writable ones."""
        due, before = values["due_date"], values["remind_before"]
        # Named one by one: only these columns, never whatever a caller passed (no Model(**body)).
        return {
            "user_id": user_id,
            "title": values["title"],
            "description": values["description"],
            "completed": values["completed"],
            "priority": values["priority"],
            "tags": values["tags"],
            "due_date": values["due_date"],
            "created_at": now,
            "updated_at": now,
            "completed_at": now if values["completed"] else None,
            "version": 1,
            "recurrence": values["recurrence"],
            "timezone": values["timezone"],
            "series_id": None,
            "next_task_id": None,
            "remind_before": before,
            "remind_at": remind_at(due, None if before is None else dt.timedelta(seconds=before)),
        }

    def _insert(self, work: UnitOfWork, row: dict[str, Any], *, key: str | None = None) -> Task:
        """Insert a task, with the idempotency key claimed for it (counted, and bounded by
        the quota: past it, the user's oldest keys are forgotten before they expire)."""
        user_id = row["user_id"]
        keys = 0 if key is None else 1
        connection = work.connection
        counted = self._quota.record_write(
            work, user_id, +1, completed=int(row["completed"]), keys=keys
        )
        assert counted is not None  # a create makes the owner's row
        if key is not None:
            forget_keys_past_quota(connection, user_id, key, counted.key_count, self._quota.limit)
        return Task.of(connection.execute(sql.INSERT_TASK, row | {"seq": counted.change_seq}).one())

    def _update(
        self,
        user_id: str,
        task_id: int,
        values: dict[str, Any],
        completion: Completion,
        if_match: IfMatch | None,
    ) -> Task:
        # One UPDATE ... RETURNING: the ownership check, the precondition, the check that
        # something changes, the write and the read are one statement, so no concurrent writer
        # can slip between them; only a write that matched no row reads the task to say why.
        kind, versions = version_check(if_match)
        statement = sql.update_task(tuple(sorted(values)), completion, kind)
        parameters = sql.new_values(values)
        parameters |= task_params(user_id, task_id) | versions
        with self._writes.begin() as work:
            connection = work.connection
            counted = self._quota.record_write(work, user_id, 0)
            if counted is None:
                raise TaskNotFound(task_id)
            was_completed = None
            if completion in ("complete", "reopen"):
                # Read under the owner's lock, which every write of this user's tasks takes.
                was_completed = connection.scalar(sql.TASK_COMPLETED, task_params(user_id, task_id))
            written = {"now": work.now, "new_seq": counted.change_seq}
            row = connection.execute(statement, parameters | written).one_or_none()
            if row is None:
                current = self._unchanged_or_raise(
                    connection, user_id, task_id, values, completion, if_match
                )
                # Rolled back: no new version, no updated_at, no change in the feed or the
                # list's tag. Whatever If-Match named, the asked-for state is the current one
                # (RFC 9110 13.1.1 allows a 2xx for a change that has already been applied).
                work.rollback()
                return current
            task = Task.of(row)
            if not DERIVED_FROM.isdisjoint(values):
                task = self._derive_fields(work, task)
            if completion == "toggle":
                was_completed = not task.completed
            if was_completed is not None and was_completed != task.completed:
                moved = 1 if task.completed else -1
                self._quota.record_write(work, user_id, 0, sequence=False, completed=moved)
                if task.completed and task.recurrence and task.next_task_id is None:
                    task = self._make_next_occurrence(work, task)
                elif not task.completed and task.next_task_id is not None:
                    task = self._withdraw_next_occurrence(work, task)
            work.commit()
            return task

    def _derive_fields(self, work: UnitOfWork, task: Task) -> Task:
        """Keep what a task's fields imply true, inside the write: a recurring task has a due
        date (else InvalidTask, and the write is undone) and a series, and `remind_at` is
        `due_date` minus `remind_before` (its delivery armed again if it moved)."""
        if task.recurrence is not None and task.due_date is None:
            raise InvalidTask("#/due_date", "a task with a recurrence needs a due_date")
        series = task.series_id
        if series is None and task.recurrence is not None:
            series = task.id
        reminder = remind_at(task.due_date, task.remind_before)
        if series == task.series_id and reminder == task.remind_at:
            return task
        derived = {"series": series, "remind_at": reminder}
        params = task_params(task.user_id, task.id) | derived
        return Task.of(work.connection.execute(sql.SET_DERIVED_FIELDS, params).one())

    def _make_next_occurrence(self, work: UnitOfWork, task: Task) -> Task:
        """Completing an occurrence: create the next one (unless the series has ended), and
        name it in the completed task."""
        # _derive_fields holds every recurring task to a due date.
        assert task.recurrence is not None
        assert task.due_date is not None
        following = next_occurrence(task.recurrence, task.due_date, task.timezone)
        if following is None:
            return task
        due, rule = following
        # The same fields, as a create takes them, but for the date, the rule and the series.
        fields = {name: getattr(task, name) for name in WRITABLE_FIELDS}
        fields |= {"completed": False, "due_date": due, "recurrence": rule}
        values = complete_column_values(fields)
        row = self._new_row(task.user_id, values, work.now) | {"series_id": task.series_id}
        made = self._insert(work, row)
        link = task_params(task.user_id, task.id) | {"next_task": made.id}
        return Task.of(work.connection.execute(sql.LINK_NEXT, link).one())

    def _withdraw_next_occurrence(self, work: UnitOfWork, task: Task) -> Task:
        """Un-completing an occurrence: delete the next one it made if nobody has written it
        since (its first version), and forget it; one that was changed is kept, and stays
        named, so that completing again makes no second one."""
        connection, user_id, now = work.connection, task.user_id, work.now
        assert task.next_task_id is not None  # what the caller checked
        following = connection.execute(
            sql.TASK, task_params(user_id, task.next_task_id)
        ).one_or_none()
        if following is not None:
            if following.version != 1:
                return task
            counted = self._quota.record_write(work, user_id, -1, tombstones=+1)
            assert counted is not None  # the owner's row is locked by this write already
            connection.execute(
                sql.delete_task("versions"),
                task_params(user_id, following.id)
                | {"versions": [1], "now": now, "new_seq": counted.change_seq},
            )
            self._purge.after_delete(work, user_id, counted.tombstone_count)
        unlink = task_params(user_id, task.id) | {"next_task": None}
        return Task.of(connection.execute(sql.LINK_NEXT, unlink).one())

    def _unchanged_or_raise(
        self,
        connection: Connection,
        user_id: str,
        task_id: int,
        values: Mapping[str, Any],
        completion: Completion,
        if_match: IfMatch | None,
    ) -> Task:
        """Say why an update matched no row: no such task, another version than If-Match names
        (each raised), or nothing to change (the task as it is returned)."""
        current = connection.execute(sql.TASK, task_params(user_id, task_id)).one_or_none()
        if current is None:
            raise TaskNotFound(task_id)
        versions = None if if_match is None else if_match.versions
        if versions is None or current.version in versions:
            # The precondition holds, so the statement found that nothing would change.
            return Task.of(current)
        if is_unchanged(current, values, completion):
            return Task.of(current)
        raise PreconditionFailed(Task.of(current))

    def _raise_unmatched(
        self, connection: Connection, user_id: str, task_id: int, if_match: IfMatch | None
    ) -> None:
        """Say why a conditional write matched no row: no such task, or another version."""
        current = None
        if if_match is not None:
            current = connection.execute(sql.TASK, task_params(user_id, task_id)).one_or_none()
        if current is None:
            raise TaskNotFound(task_id)
        raise PreconditionFailed(Task.of(current))


def remind_at(due: dt.datetime | None, before: dt.timedelta | None) -> dt.datetime | None:
    if due is None or before is None:
        return None
    try:
        return due - before
    except OverflowError:
        # A reminder before year 1: as early as a date can be.
        return dt.datetime.min.replace(tzinfo=dt.UTC)


def is_unchanged(row: Row[Any], values: Mapping[str, Any], completion: Completion) -> bool:
    """Whether writing these column values and this completion would leave the row as it is."""
    if completion == "toggle" or (
        completion != "keep" and row.completed != (completion == "complete")
    ):
        return False
    stored = row._mapping
    return all(stored[name] == value for name, value in values.items())


def completion_of(completed: bool) -> Completion:
    return "complete" if completed else "reopen"
