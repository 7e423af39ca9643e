"""The fields a task's others imply, kept true by every write that could move them: a
recurring task's series, and `remind_at` (`due_date` minus `remind_before`)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import bindparam, case, update

from storage.errors import InvalidTask
from storage.models import TaskRow, UTCDateTime
from storage.records import Task
from storage.reminders import remind_at
from storage.statements import COLUMNS, ONE_LIVE_TASK, task_params
from storage.unit_of_work import UnitOfWork

# The fields the derived ones are computed from: a write of any other leaves them as they are.
DERIVED_FROM = frozenset({"due_date", "recurrence", "remind_before"})

_remind_at = bindparam("remind_at", type_=UTCDateTime())
# The reminder's delivery (and any claim of it) is armed again when remind_at moves.
_SET_DERIVED_FIELDS = (
    update(TaskRow)
    .where(*ONE_LIVE_TASK)
    .values(
        series_id=bindparam("series", type_=TaskRow.series_id.type),
        remind_at=_remind_at,
        reminded_at=case(
            (TaskRow.remind_at.is_distinct_from(_remind_at), None), else_=TaskRow.reminded_at
        ),
        reminder_claimed_until=case(
            (TaskRow.remind_at.is_distinct_from(_remind_at), None),
            else_=TaskRow.reminder_claimed_until,
        ),
    )
    .returning(*COLUMNS)
)


def derived_values(task: Task) -> tuple[int | None, dt.datetime | None]:
    """The series id and remind_at the task's fields imply. A recurring task needs a due date
    (else InvalidTask) and has a series: its own id unless it already has one."""
    if task.recurrence is not None and task.due_date is None:
        raise InvalidTask("#/due_date", "a task with a recurrence needs a due_date")
    series = task.series_id
    if series is None and task.recurrence is not None:
        series = task.id
    return series, remind_at(task.due_date, task.remind_before)


def derive_fields(work: UnitOfWork, task: Task) -> Task:
    """Keep what a task's fields imply true, inside the write (an InvalidTask undoes it)."""
    series, reminder = derived_values(task)
    if series == task.series_id and reminder == task.remind_at:
        return task
    derived = {"series": series, "remind_at": reminder}
    params = task_params(task.user_id, task.id) | derived
    return Task.of(work.connection.execute(_SET_DERIVED_FIELDS, params).one())
