"""Recurring tasks in the database: completing an occurrence makes the next one, and undoing the
completion withdraws it. The rule that finds the next date is storage/recurrence.py's."""

from __future__ import annotations

from sqlalchemy import bindparam, update

from storage.creation import Creation, new_row
from storage.fields import WRITABLE_FIELDS, complete_column_values
from storage.models import TaskRow
from storage.purge import Purge
from storage.quota import Quota
from storage.records import Task
from storage.recurrence import next_occurrence
from storage.statements import COLUMNS, ONE_LIVE_TASK, TASK, delete_task, task_params
from storage.unit_of_work import UnitOfWork

# A completed occurrence names the next one (or, undone, no longer does).
_LINK_NEXT = (
    update(TaskRow)
    .where(*ONE_LIVE_TASK)
    .values(next_task_id=bindparam("next_task", type_=TaskRow.next_task_id.type))
    .returning(*COLUMNS)
)


class Series:
    def __init__(self, creation: Creation, quota: Quota, purge: Purge) -> None:
        self._creation = creation
        self._quota = quota
        self._purge = purge

    def make_next_occurrence(self, work: UnitOfWork, task: Task) -> Task:
        """Completing an occurrence: create the next one (unless the series has ended), and
        name it in the completed task."""
        # derive_fields holds every recurring task to a due date.
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
        row = new_row(task.user_id, values, work.now, series_id=task.series_id)
        made = self._creation.insert(work, row)
        link = task_params(task.user_id, task.id) | {"next_task": made.id}
        return Task.of(work.connection.execute(_LINK_NEXT, link).one())

    def withdraw_next_occurrence(self, work: UnitOfWork, task: Task) -> Task:
        """Un-completing an occurrence: delete the next one it made if nobody has written it
        since (its first version), and forget it; one that was changed is kept, and stays
        named, so that completing again makes no second one."""
        connection, user_id = work.connection, task.user_id
        assert task.next_task_id is not None  # what the caller checked
        following = connection.execute(TASK, task_params(user_id, task.next_task_id)).one_or_none()
        if following is not None:
            if following.version != 1:
                return task
            counted = self._quota.record_write(work, user_id, -1, tombstones=+1)
            assert counted is not None  # the owner's row is locked by this write already
            connection.execute(
                delete_task("versions"),
                task_params(user_id, following.id)
                | {"versions": [1], "now": work.now, "new_seq": counted.change_seq},
            )
            self._purge.after_delete(work, user_id, counted.tombstone_count)
        unlink = task_params(user_id, task.id) | {"next_task": None}
        return Task.of(connection.execute(_LINK_NEXT, unlink).one())
