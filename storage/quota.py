"""The owner's row (task_owners): the counts a user's quota is held to, and the user's change
sequence numbers.

Every write of a user's tasks records itself here first (Quota.record_write): the row's lock is
the first any write of the user's takes (always in that order, so writers never deadlock), and
the change number it takes under that lock orders the user's writes as they commit. On
PostgreSQL, a create, a patch and a toggle do so in the statement that writes the task
(storage/one_trip.py).
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    Connection,
    Integer,
    Label,
    Row,
    String,
    Update,
    bindparam,
    cast,
    func,
    update,
)

from storage.errors import QuotaExceeded
from storage.feed import CHANGE_CHANNEL
from storage.models import TaskOwnerRow
from storage.statements import OWNER, insert_ignoring_conflict
from storage.unit_of_work import UnitOfWork


def notify_change() -> Label[Any]:
    """For an owner row's RETURNING, on PostgreSQL: send its new change number on
    CHANGE_CHANNEL as `seq:user_id`, which PostgreSQL delivers when, and only if, the write
    commits."""
    payload = cast(TaskOwnerRow.change_seq, String()) + ":" + TaskOwnerRow.user_id
    return func.pg_notify(CHANGE_CHANNEL, payload).label("notified")


@cache
def _record(
    tasks: int,
    *,
    sequence: bool,
    completed: int = 0,
    tombstones: int = 0,
    keys: int = 0,
    notify: bool = False,
) -> Update:
    """Lock the owner's row, move the task count by `tasks` (a growing count only within
    `quota`), and the completed, deleted-task and idempotency-key counts by the others, and
    issue the next change number when `sequence`; returns the owner's change number and the
    last two counts.

    With `notify` (PostgreSQL), the new change number is also sent (notify_change), in the
    same statement: no round trip more."""
    # Only a growing count is held to the quota: a user over a lowered quota may delete.
    within = (TaskOwnerRow.task_count + tasks <= bindparam("quota"),) if tasks > 0 else ()
    values: dict[str, Any] = {}
    if tasks:
        values["task_count"] = TaskOwnerRow.task_count + tasks
    if completed:
        values["completed_count"] = TaskOwnerRow.completed_count + completed
    if tombstones:
        values["tombstone_count"] = TaskOwnerRow.tombstone_count + tombstones
    if keys:
        values["key_count"] = TaskOwnerRow.key_count + keys
    if sequence:
        values["change_seq"] = TaskOwnerRow.change_seq + 1
    returned: list[Any] = [
        TaskOwnerRow.change_seq,
        TaskOwnerRow.tombstone_count,
        TaskOwnerRow.key_count,
    ]
    if notify and sequence:
        returned.append(notify_change())
    return (
        update(TaskOwnerRow)
        .where(TaskOwnerRow.user_id == OWNER, *within)
        .values(values)
        .returning(*returned)
    )


# Takes the owner's row lock and changes nothing: for a step that must hold it before any key
# row (every write locks the owner's row first, so that no two writers wait on each other).
LOCK_OWNER = (
    update(TaskOwnerRow)
    .where(TaskOwnerRow.user_id == OWNER)
    .values(key_count=TaskOwnerRow.key_count)
)
_how_many = bindparam("how_many", type_=Integer())
_FORGET_TOMBSTONES = (
    update(TaskOwnerRow)
    .where(TaskOwnerRow.user_id == OWNER)
    .values(tombstone_count=TaskOwnerRow.tombstone_count - _how_many)
)
_FORGET_KEYS = (
    update(TaskOwnerRow)
    .where(TaskOwnerRow.user_id == OWNER)
    .values(key_count=TaskOwnerRow.key_count - _how_many)
)


class Quota:
    """The owner's row of each user, and `limit`: how many tasks, deleted tasks and live
    idempotency keys a user may keep, each."""

    def __init__(self, limit: int, dialect: str) -> None:
        self.limit = limit
        self._dialect = dialect
        self._notify = dialect == "postgresql"
        # PostgreSQL's data-modifying CTEs let the commonest writes record themselves here and
        # write the task in one statement (storage/one_trip.py); SQLite has none.
        self.one_trip = dialect == "postgresql"

    def record_write(
        self,
        work: UnitOfWork,
        user_id: str,
        tasks: int,
        *,
        sequence: bool = True,
        completed: int = 0,
        tombstones: int = 0,
        keys: int = 0,
    ) -> Row[Any] | None:
        """Record a write in the owner's row, which every write of the user's goes through
        first: lock the row, hold a growing task count to the quota (else QuotaExceeded), move
        the task, completed, deleted-task and key counts, and issue the user's next change
        number (the unit of work's change). Returns `change_seq`, `tombstone_count` and
        `key_count` (None if the user has no row: never had a task).

        The conditional UPDATE is the check and the write in one: concurrent creates cannot
        both take the last place, and the row lock orders the user's writes as they commit.
        """
        connection = work.connection
        if tasks > 0:
            owner_row = insert_ignoring_conflict(self._dialect, TaskOwnerRow, ("user_id",))
            connection.execute(owner_row, {"user_id": user_id, "task_count": 0})
        statement = _record(
            tasks,
            sequence=sequence,
            completed=completed,
            tombstones=tombstones,
            keys=keys,
            notify=self._notify,
        )
        counted = connection.execute(statement, {"owner": user_id, "quota": self.limit})
        recorded = counted.one_or_none()
        if recorded is None and tasks > 0:
            raise QuotaExceeded(self.limit)
        if recorded is not None and sequence:
            work.add_change(user_id, recorded.change_seq)
        return recorded


def lock_owner(connection: Connection, user_id: str) -> None:
    """Take the owner's row lock, before any other row of the user's."""
    connection.execute(LOCK_OWNER, {"owner": user_id})


def forget_tombstones(connection: Connection, user_id: str, how_many: int) -> None:
    connection.execute(_FORGET_TOMBSTONES, {"owner": user_id, "how_many": how_many})


def forget_keys(connection: Connection, user_id: str, how_many: int) -> int:
    if how_many:
        connection.execute(_FORGET_KEYS, {"owner": user_id, "how_many": how_many})
    return how_many


def keys_past_quota(key_count: int, quota: int) -> int:
    """How many of a user's oldest idempotency keys a keyed create forgets before they expire."""
    return max(key_count - quota, 0)


def tombstones_past_quota(tombstones: int, purged: int, quota: int) -> int:
    """How many of a user's oldest deleted tasks a delete purges before their retention ends,
    once the `purged` past retention are gone."""
    return max(tombstones - purged - quota, 0)


def total_by_status(status: str, tasks: int, completed: int) -> int:
    """The total of a list filtered by status only, from the owner's counts: no count(*)."""
    if status == "completed":
        return completed
    if status == "pending":
        return tasks - completed
    return tasks
