"""Changing a task: some of its fields, its completion, or both, under an optional If-Match.

A write that would leave the task as it is writes nothing: no new version, no updated_at, no
change in the feed or the list's tag.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from sqlalchemy import Connection, select

from storage import one_trip
from storage.derived import DERIVED_FROM, derive_fields
from storage.errors import PreconditionFailed, TaskNotFound
from storage.fields import column_values
from storage.models import TaskRow
from storage.quota import Quota
from storage.records import IfMatch, Task
from storage.series import Series
from storage.statements import (
    ONE_LIVE_TASK,
    TASK,
    Completion,
    new_values,
    task_params,
    update_task,
    version_check,
)
from storage.unit_of_work import Writes

# Whether a task is completed, before a write that sets completion (under the owner's lock).
_TASK_COMPLETED = select(TaskRow.completed).where(*ONE_LIVE_TASK)


class CompletionEffects(NamedTuple):
    # How the owner's count of completed tasks moves: -1, 0 or +1.
    completed: int
    # What becomes of a recurring task's next occurrence.
    next_occurrence: Literal["make", "withdraw"] | None


_NO_EFFECTS = CompletionEffects(0, None)


def completion_effects(
    completion: Completion,
    was_completed: bool | None,
    is_completed: bool,
    *,
    recurring: bool,
    has_next: bool,
) -> CompletionEffects:
    """What a write's completion moves besides the task: `was_completed` is the task's state
    before (read for complete and reopen, None where it was not), `is_completed` after."""
    if completion == "keep":
        return _NO_EFFECTS
    if completion == "toggle":
        was_completed = not is_completed
    if was_completed is None or was_completed == is_completed:
        return _NO_EFFECTS
    if is_completed:
        return CompletionEffects(+1, "make" if recurring and not has_next else None)
    return CompletionEffects(-1, "withdraw" if has_next else None)


def is_unchanged(
    stored: Mapping[Any, Any], values: Mapping[str, Any], completion: Completion
) -> bool:
    """Whether writing these column values and this completion would leave the stored row (its
    columns by name) as it is."""
    if completion == "toggle" or (
        completion != "keep" and stored["completed"] != (completion == "complete")
    ):
        return False
    return all(stored[name] == value for name, value in values.items())


def completion_of(completed: bool) -> Completion:
    return "complete" if completed else "reopen"


class Updates:
    def __init__(self, writes: Writes, quota: Quota, series: Series) -> None:
        self._writes = writes
        self._quota = quota
        self._series = series

    def update(
        self,
        user_id: str,
        task_id: int,
        fields: Mapping[str, Any],
        *,
        if_match: IfMatch | None = None,
    ) -> Task:
        """Change only the given fields; None clears a nullable field."""
        values: dict[str, Any] = column_values(fields)
        completed = values.pop("completed", None)
        completion: Completion = "keep" if completed is None else completion_of(completed)
        return self._update(user_id, task_id, values, completion, if_match)

    def set_completed(
        self,
        user_id: str,
        task_id: int,
        completed: bool | None,
        *,
        if_match: IfMatch | None = None,
    ) -> Task:
        """Set completion, or toggle it when `completed` is None."""
        completion: Completion = "toggle" if completed is None else completion_of(completed)
        return self._update(user_id, task_id, {}, completion, if_match)

    def _update(
        self,
        user_id: str,
        task_id: int,
        values: dict[str, Any],
        completion: Completion,
        if_match: IfMatch | None,
    ) -> Task:
        # One UPDATE ... RETURNING: the ownership check, the precondition, the check that
        # something changes, the write and the read are one statement, so no concurrent writer
        # can slip between them; only a write that matched no row reads the task to say why.
        check, versions = version_check(if_match)
        fields = tuple(sorted(values))
        parameters = new_values(values)
        parameters |= task_params(user_id, task_id) | versions
        with self._writes.begin() as work:
            connection = work.connection
            parameters["now"] = work.now
            # `moved`: how far one_trip's statement already moved the completed count.
            row, was_completed, moved = None, None, 0
            # Complete and reopen read the task first (what they move follows it), and an
            # If-Match that names none of our versions can only fail: neither is folded.
            folds = self._quota.one_trip and check != "none"
            if folds and (completion == "keep" or completion == "toggle"):
                first = connection.execute(
                    one_trip.update_task(fields, completion, check), parameters
                ).one_or_none()
                if first is None:
                    raise TaskNotFound(task_id)
                seq, moved = first.change_seq, first.moved
                work.add_change(user_id, seq)
                if first.id is not None:
                    row = first
            else:
                counted = self._quota.record_write(work, user_id, 0)
                if counted is None:
                    raise TaskNotFound(task_id)
                seq = counted.change_seq
                if completion in ("complete", "reopen"):
                    # Read under the owner's lock, which every write of this user's tasks takes.
                    was_completed = connection.scalar(
                        _TASK_COMPLETED, task_params(user_id, task_id)
                    )
            if row is None:
                # Also when one_trip's statement wrote no task: its snapshot predates the
                # owner's lock, this statement's does not (a task restored meanwhile is live).
                statement = update_task(fields, completion, check)
                row = connection.execute(statement, parameters | {"new_seq": seq}).one_or_none()
            if row is None:
                current = _unchanged_or_raise(
                    connection, user_id, task_id, values, completion, if_match
                )
                # Rolled back: no new version, no updated_at, no change in the feed or the
                # list's tag. Whatever If-Match named, the asked-for state is the current one
                # (RFC 9110 13.1.1 allows a 2xx for a change that has already been applied).
                work.rollback()
                return current
            task = Task.of(row)
            if not DERIVED_FROM.isdisjoint(values):
                task = derive_fields(work, task)
            effects = completion_effects(
                completion,
                was_completed,
                task.completed,
                recurring=bool(task.recurrence),
                has_next=task.next_task_id is not None,
            )
            if effects.completed != moved:
                self._quota.record_write(
                    work, user_id, 0, sequence=False, completed=effects.completed - moved
                )
            if effects.next_occurrence == "make":
                task = self._series.make_next_occurrence(work, task)
            elif effects.next_occurrence == "withdraw":
                task = self._series.withdraw_next_occurrence(work, task)
            work.commit()
            return task


def _unchanged_or_raise(
    connection: Connection,
    user_id: str,
    task_id: int,
    values: Mapping[str, Any],
    completion: Completion,
    if_match: IfMatch | None,
) -> Task:
    """Say why an update matched no row: no such task, another version than If-Match names
    (each raised), or nothing to change (the task as it is returned)."""
    current = connection.execute(TASK, task_params(user_id, task_id)).one_or_none()
    if current is None:
        raise TaskNotFound(task_id)
    versions = None if if_match is None else if_match.versions
    if versions is None or current.version in versions:
        # The precondition holds, so the statement found that nothing would change.
        return Task.of(current)
    if is_unchanged(current._mapping, values, completion):
        return Task.of(current)
    raise PreconditionFailed(Task.of(current))
