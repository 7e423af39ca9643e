"""The commonest writes in one round trip, on PostgreSQL: the owner's row and the task in one
statement, a data-modifying CTE (SQLite has none, and keeps quota.record_write, then the task).

A create (without an idempotency key), a patch and a toggle each record themselves in the
owner's row (storage/quota.py) and write the task in one statement; a keyed create (its key is
claimed first), complete and reopen (they read the task's state first) keep their statements.
What the one statement keeps:

- The owner's row is locked first: the task's write takes the owner CTE's change number, so it
  writes (and locks) no task row before the owner's row is written, whatever the plan.
- The quota: a create's owner CTE returns no row past it, so no task is inserted.
- pg_notify in the owner CTE's RETURNING: PostgreSQL runs a data-modifying CTE to completion
  whether or not its rows are read, and delivers the notification on commit only.
- A write that fails or changes nothing raises or rolls back: the owner's row moved in the same
  transaction, and is undone with it.

One statement reads one snapshot, taken before it waited for the owner's lock. A task row that
another write changed meanwhile is re-read at its latest version (PostgreSQL re-checks an
updated row before it writes it), but a task that only became live meanwhile (a restore) is
not seen: so when the statement writes no task, the caller runs the task's UPDATE again on its
own (statements.update_task), with a new snapshot, under the lock this statement took.

A toggle moves the owner's completed count by what it finds, which only the task's UPDATE
knows, and one statement cannot write the owner's row twice: the count moves by what this
statement's snapshot saw of the task (`moved`), and the caller corrects it on the rare toggle
that found otherwise (another write of the task committed while this one waited).
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from sqlalchemy import (
    Boolean,
    Insert,
    Integer,
    Select,
    bindparam,
    case,
    cast,
    func,
    insert,
    literal,
    literal_column,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from storage.models import TaskOwnerRow, TaskRow
from storage.quota import notify_change
from storage.statements import COLUMNS, ONE_LIVE_TASK, OWNER, VersionCheck, task_update

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


@cache
def update_task(
    fields: tuple[str, ...], completion: Literal["keep", "toggle"], check: VersionCheck
) -> Select[tuple[object, ...]]:
    """statements.update_task under the owner's next change number, taken in the same
    statement. Returns one row: the task's columns (None if the UPDATE matched no row), then
    the owner's `change_seq` and `moved`, how far the owner's completed count moved (a
    toggle's guess); no row if the owner has none (never had a task)."""
    owner_values = {"change_seq": _OWNERS.change_seq + 1}
    returned = [_OWNERS.user_id, _OWNERS.change_seq, notify_change()]
    if completion == "toggle":
        seen = select(case((TaskRow.completed, -1), else_=1)).where(*ONE_LIVE_TASK)
        guess = func.coalesce(seen.scalar_subquery(), 0)
        owner_values["completed_count"] = _OWNERS.completed_count + guess
        returned.append(guess.label("moved"))
    owner = (
        update(_OWNERS)
        .where(_OWNERS.user_id == OWNER)
        .values(owner_values)
        .returning(*returned)
        .cte("owner")
    )
    moved = owner.c.moved if completion == "toggle" else literal_column("0", Integer())
    task = (
        task_update(fields, completion, check, owner.c.change_seq)
        # True by construction; said, so that SQLAlchemy sees a join, not a cartesian product.
        .where(TaskRow.user_id == owner.c.user_id)
        .cte("task")
    )
    return select(*task.c, owner.c.change_seq, moved.label("moved")).select_from(
        owner.outerjoin(task, true())
    )
