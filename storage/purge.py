"""Purging what is kept for a while only: deleted tasks (tombstones, restorable for the retention
period) and idempotency keys past their life.

A user also keeps at most the quota's number of deleted tasks: a delete purges the user's own
past retention and, past that number, the oldest, while it holds the owner's row anyway.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

from sqlalchemy import (
    Connection,
    Engine,
    Integer,
    Select,
    bindparam,
    case,
    delete,
    exists,
    func,
    select,
    update,
)

from storage import clock
from storage.idempotency import USERS_WITH_EXPIRED_KEYS, delete_expired_keys
from storage.models import TaskOwnerRow, TaskRow
from storage.quota import Quota, forget_tombstones, tombstones_past_quota
from storage.records import Purged
from storage.statements import HORIZON, OWNER
from storage.unit_of_work import UnitOfWork, Writes

_expired = (TaskRow.user_id == OWNER, TaskRow.deleted_at < HORIZON)
_newest_expired = select(func.max(TaskRow.seq)).where(*_expired).scalar_subquery()
# The owner's row first (and the purged position with it): a feed reader that missed a purged
# tombstone must learn that it did.
_MARK_PURGED = (
    update(TaskOwnerRow)
    .where(TaskOwnerRow.user_id == OWNER, exists().where(*_expired))
    .values(
        purged_seq=case(
            (TaskOwnerRow.purged_seq < _newest_expired, _newest_expired),
            else_=TaskOwnerRow.purged_seq,
        )
    )
    .returning(TaskOwnerRow.user_id)
)
_PURGE_TASKS = delete(TaskRow).where(*_expired).returning(TaskRow.id)
_USERS_WITH_EXPIRED_TASKS = select(TaskRow.user_id).where(TaskRow.deleted_at < HORIZON).distinct()
# The deletion time of the user's `skip`+1-th oldest deleted task.
_NTH_OLDEST_DELETION = (
    select(TaskRow.deleted_at)
    .where(TaskRow.user_id == OWNER, TaskRow.deleted_at.is_not(None))
    .order_by(TaskRow.deleted_at, TaskRow.id)
    .limit(1)
    .offset(bindparam("skip", type_=Integer()))
)


def purge_expired(connection: Connection, user_id: str, horizon: dt.datetime) -> int:
    """Remove the user's deleted tasks deleted before `horizon`; how many there were."""
    expired = {"owner": user_id, "horizon": horizon}
    if connection.execute(_MARK_PURGED, expired).one_or_none() is None:
        return 0
    purged = len(connection.execute(_PURGE_TASKS, expired).all())
    forget_tombstones(connection, user_id, purged)
    return purged


def purge_oldest(connection: Connection, user_id: str, how_many: int) -> None:
    """Purge the user's `how_many` oldest deleted tasks before their retention ends: a
    user keeps at most the quota of them (and ties in deletion time go together)."""
    nth = {"owner": user_id, "skip": how_many - 1}
    last = connection.scalar(_NTH_OLDEST_DELETION, nth)
    if last is not None:
        purge_expired(connection, user_id, last + dt.timedelta(microseconds=1))


class Purge:
    def __init__(
        self, engine: Engine, writes: Writes, quota: Quota, retention: dt.timedelta
    ) -> None:
        self._engine = engine
        self._writes = writes
        self._quota = quota
        self.retention = retention

    def after_delete(self, work: UnitOfWork, user_id: str, tombstones: int) -> None:
        """After a delete: purge the user's deleted tasks past retention and, past the quota's
        number of them, the oldest. Opportunistic: the owner's row is locked already, so this
        costs one statement."""
        connection = work.connection
        purged = purge_expired(connection, user_id, work.now - self.retention)
        excess = tombstones_past_quota(tombstones, purged, self._quota.limit)
        if excess:
            purge_oldest(connection, user_id, excess)

    def purge(self, now: dt.datetime | None = None) -> Purged:
        """Remove tombstones past the retention period and idempotency keys past their life."""
        now = now or clock.utc_now()
        horizon = now - self.retention
        # One user at a time, each in a transaction of its own, taking rows in the order the
        # user's own requests take them (owner row first; keys by primary key), so purge and
        # requests never lock the same rows in opposite orders.
        tasks = self._per_user(
            _USERS_WITH_EXPIRED_TASKS.params(horizon=horizon),
            lambda connection, user_id: purge_expired(connection, user_id, horizon),
        )
        keys = self._per_user(
            USERS_WITH_EXPIRED_KEYS.params(now=now),
            lambda connection, user_id: delete_expired_keys(connection, user_id, now),
        )
        return Purged(tasks=tasks, idempotency_keys=keys)

    def _per_user(self, users: Select[str], purge: Callable[[Connection, str], int]) -> int:
        with self._engine.begin() as connection:
            found = connection.scalars(users).all()
        done = 0
        for user_id in found:
            # Each user's purge is a unit of work of its own (see purge()).
            with self._writes.begin() as work:
                done += purge(work.connection, user_id)
                work.commit()
        return done
