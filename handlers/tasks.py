"""Task operations: HTTP in, one storage call, HTTP out."""

from __future__ import annotations

import datetime as dt
from typing import Any, TypeAlias
from urllib.parse import parse_qsl, quote, urlencode

from connexion.lifecycle import ConnexionResponse
from starlette.datastructures import URL, Headers
from starlette.types import Scope

from handlers import preconditions
from handlers.representation import changes_json, list_etag, task_etag, task_json
from storage import Task, TaskQuery, TaskStore
from todo_api import task_fields
from todo_api.contract import task_defaults, writable_task_fields
from todo_api.web.connexion_hooks import request_scope
from todo_api.web.problems import ValidationProblem

Response: TypeAlias = tuple[Any, int, dict[str, str]] | ConnexionResponse
# Every operation also declares problem+json answers, so Connexion must be told which one this is.
JSON = {"Content-Type": "application/json"}


def list_tasks(
    user: str,
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
) -> Response:
    query = TaskQuery(
        status=status,
        priority=priority,
        tag=None if tag is None else task_fields.tag(tag),
        q=q,
        due_before=_instant(due_before, parameter="due_before"),
        due_after=_instant(due_after, parameter="due_after"),
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
        reminder_due=reminder == "due",
    )
    scope = request_scope()
    page = store(scope).list_tasks(user, query)
    url = URL(scope=scope)
    headers = {"X-Total-Count": str(page.total)}
    # Which reminders are due moves with the clock, not with writes: no tag can name it.
    if not query.reminder_due:
        etag = list_etag(user, page.as_of, path_of(url), query)
        if preconditions.none_match(etag, Headers(scope=scope)):
            return _not_modified(etag)
        headers["ETag"] = etag
    if page.next_cursor is not None:
        headers["Link"] = f'<{next_page(url, page.next_cursor)}>; rel="next"'
    return [task_json(task) for task in page.tasks], 200, JSON | headers


def create_task(user: str, body: dict[str, Any]) -> Response:
    scope = request_scope()
    key = Headers(scope=scope).get("idempotency-key")
    created = store(scope).create(user, task_defaults() | _writable(body), idempotency_key=key)
    headers = {"Location": f"{path_of(URL(scope=scope))}/{created.task.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _task(created.task, 201, headers)


def get_task(user: str, task_id: int) -> Response:
    scope = request_scope()
    task = store(scope).get(user, task_id)
    etag = task_etag(task)
    if preconditions.none_match(etag, Headers(scope=scope)):
        return _not_modified(etag)
    return _task(task)


def update_task(user: str, task_id: int, body: dict[str, Any]) -> Response:
    scope = request_scope()
    if_match = preconditions.if_match(task_id, Headers(scope=scope))
    return _task(store(scope).update(user, task_id, _writable(body), if_match=if_match))


# PUT is partial too: an older frontend must not wipe fields it does not know about.
put_task = update_task


def delete_task(user: str, task_id: int) -> Response:
    scope = request_scope()
    store(scope).delete(
        user, task_id, if_match=preconditions.if_match(task_id, Headers(scope=scope))
    )
    return ConnexionResponse(status_code=204)


def complete_task(user: str, task_id: int, body: dict[str, Any] | None = None) -> Response:
    completed = (body or {}).get("completed")
    scope = request_scope()
    if_match = preconditions.if_match(task_id, Headers(scope=scope))
    return _task(store(scope).set_completed(user, task_id, completed, if_match=if_match))


post_complete_task = complete_task


def restore_task(user: str, task_id: int) -> Response:
    return _task(store(request_scope()).restore(user, task_id))


def list_changes(user: str, limit: int, cursor: str | None = None) -> Response:
    return changes_json(store(request_scope()).changes(user, cursor, limit)), 200, JSON


def store(scope: Scope) -> TaskStore:
    store: TaskStore = scope["state"]["store"]  # set by todo_api.app at startup
    return store


def _task(task: Task, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return task_json(task), status, JSON | {"ETag": task_etag(task)} | (headers or {})


def _not_modified(etag: str) -> Response:
    return ConnexionResponse(status_code=304, headers={"ETag": etag})


def _writable(body: dict[str, Any]) -> dict[str, Any]:
    fields = {name: body[name] for name in writable_task_fields() if name in body}
    if fields.get("due_date") is not None:
        fields["due_date"] = _instant(fields["due_date"], pointer="#/due_date")
    if "tags" in fields:
        fields["tags"] = task_fields.tags(fields["tags"])
    if fields.get("recurrence") is not None:
        fields["recurrence"] = task_fields.recurrence(fields["recurrence"])
    if "timezone" in fields:
        fields["timezone"] = task_fields.timezone(fields["timezone"])
    if fields.get("remind_before") is not None:
        fields["remind_before"] = task_fields.duration(fields["remind_before"])
    return fields


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
        raise ValidationProblem([{**where, "detail": detail}]) from None


def path_of(url: URL) -> str:
    return quote(url.path.rstrip("/"))


def next_page(url: URL, cursor: str) -> str:
    params = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k != "cursor"]
    return f"{path_of(url)}?{urlencode([*params, ('cursor', cursor)])}"
