"""Deleting a task, which keeps it restorable (a tombstone) for the retention period, and
restoring it within that period."""

from __future__ import annotations

from typing import NoReturn

from sqlalchemy import Connection, update

from storage.errors import PreconditionFailed, TaskNotFound
from storage.listing import Listing
from storage.models import TaskRow
from storage.purge import Purge
from storage.quota import Quota
from storage.records import IfMatch, Task
from storage.statements import (
    COLUMNS,
    HORIZON,
    NEW_SEQ,
    NOT_BEFORE_NOW,
    OWNER,
    TASK,
    TASK_ID,
    delete_task,
    task_params,
    version_check,
)
from storage.unit_of_work import Writes

_RESTORE_TASK = (
    update(TaskRow)
    .where(
        TaskRow.id == TASK_ID,
        TaskRow.user_id == OWNER,
        TaskRow.deleted_at >= HORIZON,
    )
    .values(deleted_at=None, version=TaskRow.version + 1, seq=NEW_SEQ, updated_at=NOT_BEFORE_NOW)
    .returning(*COLUMNS)
)


class Deletion:
    def __init__(self, writes: Writes, quota: Quota, purge: Purge, listing: Listing) -> None:
        self._writes = writes
        self._quota = quota
        self._purge = purge
        self._listing = listing

    def delete(self, user_id: str, task_id: int, *, if_match: IfMatch | None = None) -> None:
        """Delete a task, keeping it restorable (a tombstone) for the retention period."""
        with self._writes.begin() as work:
            connection = work.connection
            counted = self._quota.record_write(work, user_id, -1, tombstones=+1)
            if counted is None:
                raise TaskNotFound(task_id)
            check, versions = version_check(if_match)
            deleted = connection.execute(
                delete_task(check),
                task_params(user_id, task_id)
                | versions
                | {"now": work.now, "new_seq": counted.change_seq},
            ).one_or_none()
            if deleted is None:
                _raise_unmatched(connection, user_id, task_id, if_match)
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
            horizon = work.now - self._purge.retention
            row = work.connection.execute(
                _RESTORE_TASK,
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
        return self._listing.get(user_id, task_id)


def _raise_unmatched(
    connection: Connection, user_id: str, task_id: int, if_match: IfMatch | None
) -> NoReturn:
    """Say why a conditional write matched no row: no such task, or another version."""
    current = None
    if if_match is not None:
        current = connection.execute(TASK, task_params(user_id, task_id)).one_or_none()
    if current is None:
        raise TaskNotFound(task_id)
    raise PreconditionFailed(Task.of(current))
