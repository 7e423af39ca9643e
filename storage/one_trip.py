"""The commonest writes in one round trip, on PostgreSQL: the owner's row and the task in one
statement, a data-modifying CTE (SQLite has none, and keeps quota.record_write, then the task).

A create without an idempotency key records itself in the owner's row (storage/quota.py) and
inserts the task in one statement; a keyed create (its key is claimed first) keeps its
statements. What the one statement keeps:

- The owner's row is locked first: the task's insert takes the owner CTE's change number, so it
  writes no task row before the owner's row is written, whatever the plan.
- The quota: a create's owner CTE returns no row past it, so no task is inserted.
- pg_notify in the owner CTE's RETURNING: PostgreSQL runs a data-modifying CTE to completion
  whether or not its rows are read, and delivers the notification on commit only.
- A write that fails raises: the owner's row moved in the same transaction, and is undone with
  it.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Boolean, Insert, Integer, bindparam, cast, insert, literal, select
from sqlalchemy.dialects.postgresql import insert as pg_insert

from storage.models import TaskOwnerRow, TaskRow
from storage.quota import notify_change
from storage.statements import COLUMNS, OWNER

_OWNERS = TaskOwnerRow
_TASKS = TaskRow.__table__
_quota = bindparam("quota", type_=Integer())


@cache
def create_task(columns: tuple[str, ...]) -> Insert:
    """Insert a task (run with its column values, by these names) under the owner's next
    change number, making the owner's row or counting the task in it within `quota`; returns
    the task, or no row past the quota. Run with `owner` and `quota` too."""
    completed = cast(bindparam("completed", type_=Boolean()), Integer())
    first = select(OWNER, literal(1), completed, literal(1)).where(literal(1) <= _quota)
    made = pg_insert(_OWNERS).from_select(
        ["user_id", "task_count", "completed_count", "change_seq"], first
    )
    owner = (
        made.on_conflict_do_update(
            index_elements=[_OWNERS.user_id],
            set_={
                "task_count": _OWNERS.task_count + 1,
                "completed_count": _OWNERS.completed_count + made.excluded.completed_count,
                "change_seq": _OWNERS.change_seq + 1,
            },
            # Held to the quota, as quota.record_write holds a growing count.
            where=_OWNERS.task_count + 1 <= _quota,
        )
        .returning(_OWNERS.change_seq, notify_change())
        .cte("owner")
    )
    values = [bindparam(name, type_=_TASKS.c[name].type) for name in columns]
    task = select(*values, owner.c.change_seq)
    return insert(TaskRow).from_select([*columns, "seq"], task).returning(*COLUMNS)
