"""Reminders on their way to the streams: claimed as leases, confirmed once written.

A claim does not mark a reminder delivered: it holds it, until `reminder_claimed_until`, for
the claiming process to hand to its streams (and, on PostgreSQL, for every listening process
to hear of on REMINDER_CHANNEL). The first stream that writes it confirms it, and only then is
it delivered (`reminded_at`) and off the `?reminder=due` list. A claim no stream took is
released at once where the claimer knows so, and otherwise lapses when its lease ends: a
crash, a stream that closed in between, or a listening process whose streams all went lose
nothing, and the reminder may be sent again (at least once, never lost).

Claims are fair across users: each round takes at most `per_user` of each user's reminders,
oldest first, and of those at most `limit`, each user's first before anyone's second.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Collection, Sequence
from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Select,
    String,
    Update,
    bindparam,
    cast,
    func,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY

from storage.models import TaskRow, UTCDateTime
from storage.records import Task
from storage.statements import COLUMNS, NOW, OWNER

REMINDER_CHANNEL = "todo_reminders"
LISTEN_REMINDERS = f"LISTEN {REMINDER_CHANNEL}"
DEFAULT_LEASE = dt.timedelta(seconds=30)
# A user's reminders one round claims at most: a backlog drains at this pace, beside the
# reminders of every other user, instead of ahead of them.
PER_USER = 20
# All users' reminders one round claims at most: the round's work stays bounded.
PER_ROUND = 500

# Reminders due and not yet delivered: the `?reminder=due` listing (storage/listing.py), and
# what a claim may take when no other process's lease holds it.
REMINDER_DUE = (
    TaskRow.remind_at <= NOW,
    TaskRow.reminded_at.is_(None),
    TaskRow.deleted_at.is_(None),
    TaskRow.completed.is_(False),
)
_until = bindparam("until", type_=UTCDateTime())
_CLAIMABLE: tuple[ColumnElement[bool], ...] = (
    *REMINDER_DUE,
    or_(TaskRow.reminder_claimed_until.is_(None), TaskRow.reminder_claimed_until <= NOW),
)

# The first write confirms; the task's remind_at, as claimed, keeps a confirmation of a
# reminder since moved (armed again) from counting for the new one.
DELIVER = (
    update(TaskRow)
    .where(
        TaskRow.user_id == OWNER,
        TaskRow.id == bindparam("task_id", type_=TaskRow.id.type),
        TaskRow.remind_at == bindparam("claimed_remind_at", type_=UTCDateTime()),
        TaskRow.reminded_at.is_(None),
    )
    # The lease stays: it names the claim that was delivered, for other processes to read.
    .values(reminded_at=NOW)
)
# Only the lease this claim took: a later claim's lease stays.
RELEASE = (
    update(TaskRow)
    .where(
        TaskRow.user_id == OWNER,
        TaskRow.id.in_(bindparam("task_ids", expanding=True)),
        TaskRow.reminder_claimed_until == _until,
        TaskRow.reminded_at.is_(None),
    )
    .values(reminder_claimed_until=None)
)
# The tasks another process claimed, as they are now, for this process's streams: only while
# the claim heard of is theirs (delivered or not), not once the reminder moved (which clears
# it) or was claimed again.
CLAIMED = (
    select(*COLUMNS)
    .where(
        TaskRow.user_id == OWNER,
        TaskRow.id.in_(bindparam("task_ids", expanding=True)),
        TaskRow.deleted_at.is_(None),
        TaskRow.completed.is_(False),
        TaskRow.reminder_claimed_until == _until,
    )
    .order_by(TaskRow.id)
)


def _picked(dialect: str) -> Select[Any]:
    """The ids a round claims: up to `per_user` of each owner's, then up to `limit` of those
    in order of their rank within their owner (round-robin), then of remind_at."""
    order = (TaskRow.remind_at, TaskRow.id)
    if dialect == "postgresql":
        # One index probe per owner, each locking no more than it takes, skipping rows another
        # claimer holds (a window function cannot be used with FOR UPDATE in one query).
        owners = (
            func.unnest(bindparam("owners", type_=ARRAY(String())))
            .table_valued("user_id")
            .render_derived(name="o")
        )
        free = (
            select(TaskRow.id, TaskRow.remind_at)
            .where(TaskRow.user_id == owners.c.user_id, *_CLAIMABLE)
            .order_by(*order)
            .limit(bindparam("per_user"))
            .with_for_update(skip_locked=True)
            .lateral("free")
        )
        rank = func.row_number().over(
            partition_by=owners.c.user_id, order_by=(free.c.remind_at, free.c.id)
        )
        ranked = (
            select(free.c.id, free.c.remind_at, rank.label("rank"))
            .select_from(owners)
            .join(free, true())
            .subquery("ranked")
        )
    else:
        # SQLite runs one writer at a time: no claimer can hold a row another wants.
        rank = func.row_number().over(partition_by=TaskRow.user_id, order_by=order)
        due = (
            select(TaskRow.id, TaskRow.remind_at, rank.label("rank"))
            .where(TaskRow.user_id.in_(bindparam("owners", expanding=True)), *_CLAIMABLE)
            .subquery("due")
        )
        ranked = select(due).where(due.c.rank <= bindparam("per_user")).subquery("ranked")
    return (
        select(ranked.c.id)
        .order_by(ranked.c.rank, ranked.c.remind_at, ranked.c.id)
        .limit(bindparam("limit"))
    )


@cache
def claim_statement(dialect: str) -> Update:
    """Lease the picked reminders until `until` and return their tasks. The outer conditions
    are checked again on each row as it is when updated, so a reminder is held by one claim
    at a time. On PostgreSQL each claim is also sent on REMINDER_CHANNEL, on commit, as
    `task_id:claimer:user_id`."""
    returned: list[Any] = list(COLUMNS)
    if dialect == "postgresql":
        payload = (
            cast(TaskRow.id, String())
            + ":"
            + bindparam("claimer", type_=String())
            + ":"
            + bindparam("lease", type_=String())
            + ":"
            + TaskRow.user_id
        )
        returned.append(func.pg_notify(REMINDER_CHANNEL, payload).label("notified"))
    return (
        update(TaskRow)
        .where(TaskRow.id.in_(_picked(dialect).scalar_subquery()), *_CLAIMABLE)
        .values(reminder_claimed_until=_until)
        .returning(*returned)
    )


def remind_at(due: dt.datetime | None, before: dt.timedelta | None) -> dt.datetime | None:
    """When a task's reminder is due: `before` its due date (None without either)."""
    if due is None or before is None:
        return None
    try:
        return due - before
    except OverflowError:
        # A reminder before year 1: as early as a date can be.
        return dt.datetime.min.replace(tzinfo=dt.UTC)


_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_MICROSECOND = dt.timedelta(microseconds=1)

# A claim heard on REMINDER_CHANNEL: user id, task id, claimer, and the lease's end.
Claim = tuple[str, int, str, dt.datetime]


def parse_claim(payload: str) -> Claim | None:
    """A claim (`task_id:claimer:lease:user_id`, the lease's end in microseconds since the
    epoch), or None if it is not one. A user id may hold colons: only the first three
    separate."""
    task_id, _, rest = payload.partition(":")
    claimer, _, rest = rest.partition(":")
    lease, _, user_id = rest.partition(":")
    if not task_id.isdigit() or not claimer or not lease.isdigit() or not user_id:
        return None
    return user_id, int(task_id), claimer, _EPOCH + int(lease) * _MICROSECOND


class ReminderStore:
    """The claims, confirmations and releases of reminders; one transaction per call."""

    def __init__(self, engine: Engine, lease: dt.timedelta = DEFAULT_LEASE) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self.lease = lease

    def claim(
        self,
        user_ids: Collection[str],
        now: dt.datetime | None = None,
        *,
        per_user: int = PER_USER,
        limit: int = PER_ROUND,
        claimer: str = "-",
    ) -> list[Task]:
        """Lease the due reminders of these users (fairly, see the module) from `now` for the
        lease's length: each is returned by one call only while its lease lasts."""
        if not user_ids:
            return []
        now = now or dt.datetime.now(dt.UTC)
        values = {
            "owners": list(user_ids),
            "now": now,
            "until": now + self.lease,
            "per_user": per_user,
            "limit": limit,
            "claimer": claimer,
            "lease": str((now + self.lease - _EPOCH) // _MICROSECOND),
        }
        with self._engine.begin() as connection:
            rows = connection.execute(claim_statement(self._dialect), values).all()
        return [Task.of(row) for row in rows]

    def deliver(self, tasks: Sequence[Task], now: dt.datetime | None = None) -> None:
        """A stream wrote these reminders: each is delivered (the first confirmation counts)."""
        if not tasks:
            return
        now = now or dt.datetime.now(dt.UTC)
        values = [
            {
                "owner": task.user_id,
                "task_id": task.id,
                "claimed_remind_at": task.remind_at,
                "now": now,
            }
            for task in tasks
        ]
        with self._engine.begin() as connection:
            connection.execute(DELIVER, values)

    def release(self, user_id: str, task_ids: Collection[int], claimed_at: dt.datetime) -> None:
        """No stream took these reminders, claimed at `claimed_at`: claimable again now."""
        if not task_ids:
            return
        values = {"owner": user_id, "task_ids": list(task_ids), "until": claimed_at + self.lease}
        with self._engine.begin() as connection:
            connection.execute(RELEASE, values)

    def read(self, user_id: str, task_ids: Collection[int], until: dt.datetime) -> list[Task]:
        """The user's pending tasks among `task_ids` whose reminders are still held by the
        claim whose lease ends at `until` (or were delivered under it), in id order."""
        if not task_ids:
            return []
        values = {"owner": user_id, "task_ids": sorted(task_ids), "until": until}
        with self._engine.begin() as connection:
            rows = connection.execute(CLAIMED, values).all()
        return [Task.of(row) for row in rows]
