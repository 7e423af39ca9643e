"""The task use cases. Values come as the contract carries them (JSON fields, query
parameters), already checked against its schemas; what a schema cannot state is checked here."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from storage import Changes, Created, IfMatch, Page, Task, TaskQuery, TaskStore
from todo_api.contract import status_synonyms, task_defaults, writable_task_fields
from todo_api.usecases import fields
from todo_api.usecases.errors import InvalidInput


def list_tasks(
    store: TaskStore,
    user: str,
    *,
    status: str,
    sort: str,
    order: str,
    limit: int,
    priority: str | None = None,
    tag: str | None = None,
    q: str | None = None,
    due_before: str | None = None,
    due_after: str | None = None,
    reminder: str | None = None,
    cursor: str | None = None,
) -> tuple[TaskQuery, Page]:
    """One page of the user's tasks, and the query it answers (what names the page)."""
    query = TaskQuery(
        status=task_status(status),
        priority=priority,
        tag=None if tag is None else fields.tag(tag),
        q=q,
        due_before=_instant(due_before, parameter="due_before"),
        due_after=_instant(due_after, parameter="due_after"),
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        reminder_due=reminder == "due",
    )
    return query, store.list_tasks(user, query)


def task_status(status: str, synonyms: Mapping[str, str] | None = None) -> str:
    """The status a list's `status` parameter names, a synonym (`active`) read as its status
    (`pending`): the query, and so the tasks, the total and the list's ETag, are the same.
    The synonyms are the spec's unless given."""
    return (status_synonyms() if synonyms is None else synonyms).get(status, status)


def create_task(
    store: TaskStore, user: str, body: Mapping[str, Any], *, idempotency_key: str | None = None
) -> Created:
    """The spec's defaults for every writable field the body leaves out."""
    values = task_defaults() | writable(body)
    return store.create(user, values, idempotency_key=idempotency_key)


def get_task(store: TaskStore, user: str, task_id: int) -> Task:
    return store.get(user, task_id)


def update_task(
    store: TaskStore,
    user: str,
    task_id: int,
    body: Mapping[str, Any],
    *,
    if_match: IfMatch | None = None,
) -> Task:
    """Partial: only the fields sent change, and `null` clears a nullable one."""
    return store.update(user, task_id, writable(body), if_match=if_match)


def complete_task(
    store: TaskStore,
    user: str,
    task_id: int,
    completed: bool | None,
    *,
    if_match: IfMatch | None = None,
) -> Task:
    """Set completion, or toggle it when `completed` is None."""
    return store.set_completed(user, task_id, completed, if_match=if_match)


def delete_task(
    store: TaskStore, user: str, task_id: int, *, if_match: IfMatch | None = None
) -> None:
    store.delete(user, task_id, if_match=if_match)


def restore_task(store: TaskStore, user: str, task_id: int) -> Task:
    return store.restore(user, task_id)


def list_changes(store: TaskStore, user: str, limit: int, cursor: str | None = None) -> Changes:
    return store.changes(user, cursor, limit)


def writable(body: Mapping[str, Any]) -> dict[str, Any]:
    """The body's writable fields, and only those (no mass assignment), as storage takes them."""
    values = {name: body[name] for name in writable_task_fields() if name in body}
    if values.get("due_date") is not None:
        values["due_date"] = _instant(values["due_date"], pointer="#/due_date")
    if "tags" in values:
        values["tags"] = fields.tags(values["tags"])
    if values.get("recurrence") is not None:
        values["recurrence"] = fields.recurrence(values["recurrence"])
    if "timezone" in values:
        values["timezone"] = fields.timezone(values["timezone"])
    if values.get("remind_before") is not None:
        values["remind_before"] = fields.duration(values["remind_before"])
    return values


def _instant(value: str | None, **where: str) -> dt.datetime | None:
    """An RFC 3339 date-time (already checked by the schema) as an aware UTC datetime."""
    if value is None:
        return None
    try:
        parsed = dt.datetime.fromisoformat(value.upper())
        if parsed.tzinfo is None:
            raise ValueError("no UTC offset")
        return parsed.astimezone(dt.UTC)
    except (ValueError, OverflowError):
        # Leap seconds and instants outside years 1-9999 in UTC pass the format check.
        detail = "must be an RFC 3339 date-time between years 1 and 9999 in UTC"
        raise InvalidInput([{**where, "detail": detail}]) from None
