"""Creating tasks: from a complete set of writable fields, at most once per idempotency key."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from storage import idempotency, one_trip, snapshots
from storage.derived import derive_fields
from storage.errors import IdempotencyKeyReused, QuotaExceeded
from storage.fields import complete_column_values
from storage.quota import Quota
from storage.records import Created, Task
from storage.reminders import remind_at
from storage.statements import INSERT_TASK
from storage.unit_of_work import UnitOfWork, Writes

# An idempotent create retries its claim when the key in its way vanished before it was read;
# each try deletes expired keys first, so the next one finds the place free.
_CLAIM_ATTEMPTS = 5


def new_row(
    user_id: str, values: Mapping[str, Any], now: dt.datetime, *, series_id: int | None = None
) -> dict[str, Any]:
    """A new task's column values, from a complete set of writable ones (column_values)."""
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
        "series_id": series_id,
        "next_task_id": None,
        "remind_before": before,
        "remind_at": remind_at(due, None if before is None else dt.timedelta(seconds=before)),
    }


class Creation:
    def __init__(
        self, writes: Writes, quota: Quota, dialect: str, idempotency_ttl: dt.timedelta
    ) -> None:
        self._writes = writes
        self._quota = quota
        self._dialect = dialect
        self._idempotency_ttl = idempotency_ttl

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
                task = derive_fields(work, self.insert(work, new_row(user_id, values, work.now)))
                work.commit()
                return Created(task, replayed=False)
        for _attempt in range(_CLAIM_ATTEMPTS):
            created = self._try_keyed_create(user_id, idempotency_key, values, fields)
            if created is not None:
                return created
        raise RuntimeError(f"could not claim idempotency key {idempotency_key!r}")

    def _try_keyed_create(
        self, user_id: str, key: str, values: Mapping[str, Any], fields: Mapping[str, Any]
    ) -> Created | None:
        """One try at an idempotent create; None if the key that was in the way expired (and
        was deleted by another request) before it could be read, so that a new try claims it."""
        asked = snapshots.fingerprint(fields)
        with self._writes.begin() as work:
            connection = work.connection
            idempotency.delete_expired_keys(connection, user_id, work.now)
            expires_at = work.now + self._idempotency_ttl
            if idempotency.claim(connection, self._dialect, user_id, key, asked, expires_at):
                row = new_row(user_id, values, work.now)
                task = derive_fields(work, self.insert(work, row, key=key))
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

    def insert(self, work: UnitOfWork, row: dict[str, Any], *, key: str | None = None) -> Task:
        """Insert a task, with the idempotency key claimed for it (counted, and bounded by
        the quota: past it, the user's oldest keys are forgotten before they expire)."""
        user_id = row["user_id"]
        keys = 0 if key is None else 1
        connection = work.connection
        if key is None and self._quota.one_trip:
            counted_with = row | {"owner": user_id, "quota": self._quota.limit}
            made = connection.execute(one_trip.create_task(tuple(row)), counted_with).one_or_none()
            if made is None:
                raise QuotaExceeded(self._quota.limit)
            work.add_change(user_id, made.seq)
            return Task.of(made)
        counted = self._quota.record_write(
            work, user_id, +1, completed=int(row["completed"]), keys=keys
        )
        assert counted is not None  # a create makes the owner's row
        if key is not None:
            idempotency.forget_keys_past_quota(
                connection, user_id, key, counted.key_count, self._quota.limit
            )
        return Task.of(connection.execute(INSERT_TASK, row | {"seq": counted.change_seq}).one())
