"""The changes feed: each user's writes in the order they committed, by change sequence number.

Every write takes the user's next number in the owner's row (storage/quota.py) and stamps it
on the task it wrote (`seq`); a feed cursor stands after one. On PostgreSQL the same write
sends the number on CHANGE_CHANNEL, for every process that listens (storage/notifications.py).
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import Engine, bindparam, select

from storage.cursors import feed_cursor, feed_position
from storage.errors import CursorExpired
from storage.models import TaskOwnerRow, TaskRow
from storage.records import Changes, Task, Tombstone
from storage.statements import COLUMNS, OWNER

# Live updates: each write of a user's tasks is announced on this channel (quota.notify_change).
CHANGE_CHANNEL = "todo_changes"
LISTEN = f"LISTEN {CHANGE_CHANNEL}"

_CHANGES = (
    select(*COLUMNS)
    .where(TaskRow.user_id == OWNER, TaskRow.seq > bindparam("after", type_=TaskRow.seq.type))
    .order_by(TaskRow.seq)
    .limit(bindparam("limit"))
)
_OWNER_FOR_FEED = select(TaskOwnerRow.change_seq, TaskOwnerRow.purged_seq).where(
    TaskOwnerRow.user_id == OWNER
)
_LATEST_CHANGES = select(TaskOwnerRow.user_id, TaskOwnerRow.change_seq).where(
    TaskOwnerRow.user_id.in_(bindparam("owners", expanding=True))
)


class Feed:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def changes(self, user_id: str, cursor: str | None, limit: int) -> Changes:
        """The user's writes after `cursor` (from the beginning without one), oldest first."""
        after = feed_position(cursor) if cursor is not None else 0
        values = {"owner": user_id, "after": after, "limit": limit + 1}
        with self._engine.begin() as connection:
            rows = connection.execute(_CHANGES, values).all()
            # Read after the rows: a purge that took rows this read missed has moved it.
            owner = connection.execute(_OWNER_FOR_FEED, values).one_or_none()
        latest, purged = (owner.change_seq, owner.purged_seq) if owner else (0, 0)
        if cursor is not None and (after < purged or after > latest):
            raise CursorExpired
        has_more = len(rows) > limit
        rows = rows[:limit]
        changes: list[Task | Tombstone] = [
            Task.of(row) if row.deleted_at is None else Tombstone(row.id, row.deleted_at)
            for row in rows
        ]
        return Changes(
            changes=changes,
            cursor=feed_cursor(rows[-1].seq if rows else after),
            has_more=has_more,
            positions=[feed_cursor(row.seq) for row in rows],
        )

    def latest_changes(self, user_ids: Collection[str]) -> dict[str, int]:
        """Each user's latest change number (users without a task are left out)."""
        if not user_ids:
            return {}
        with self._engine.begin() as connection:
            rows = connection.execute(_LATEST_CHANGES, {"owners": list(user_ids)}).all()
        return {row.user_id: row.change_seq for row in rows}
