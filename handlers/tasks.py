"""Task operations: HTTP in, one storage call, HTTP out."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from connexion import request
from connexion.lifecycle import ConnexionResponse

from handlers.contract import task_defaults, writable_task_fields
from handlers.problems import ValidationProblem
from storage import Task, TaskQuery, TaskStore

Response = tuple[Any, int, dict[str, str]] | ConnexionResponse
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
    cursor: str | None = None,
) -> Response:
    query = TaskQuery(
        status=status,
        priority=priority,
        tag=tag,
        q=q,
        due_before=_instant(due_before, parameter="due_before"),
        due_after=_instant(due_after, parameter="due_after"),
        sort=sort,
        order=order,
        limit=limit,
        cursor=cursor,
    )
    page = _store().list(user, query)
    headers = {"X-Total-Count": str(page.total)}
    if page.next_cursor is not None:
        headers["Link"] = f'<{_next_page(page.next_cursor)}>; rel="next"'
    return [_json(task) for task in page.tasks], 200, JSON | headers


def create_task(user: str, body: dict[str, Any]) -> Response:
    task = _store().create(user, task_defaults() | _writable(body))
    return _json(task), 201, JSON | {"Location": f"{_path()}/{task.id}"}


def get_task(user: str, task_id: int) -> Response:
    return _json(_store().get(user, task_id)), 200, JSON


def update_task(user: str, task_id: int, body: dict[str, Any]) -> Response:
    return _json(_store().update(user, task_id, _writable(body))), 200, JSON


# PUT is partial too: an older frontend must not wipe fields it does not know about.
put_task = update_task


def delete_task(user: str, task_id: int) -> Response:
    _store().delete(user, task_id)
    return ConnexionResponse(status_code=204)


def complete_task(user: str, task_id: int, body: dict[str, Any] | None = None) -> Response:
    completed = (body or {}).get("completed")
    return _json(_store().set_completed(user, task_id, completed)), 200, JSON


post_complete_task = complete_task


def _store() -> TaskStore:
    return request.state.store


def _writable(body: dict[str, Any]) -> dict[str, Any]:
    fields = {name: body[name] for name in writable_task_fields() if name in body}
    if fields.get("due_date") is not None:
        fields["due_date"] = _instant(fields["due_date"], pointer="#/due_date")
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


def _json(task: Task) -> dict[str, Any]:
    return {
        name: _rfc3339(value) if isinstance(value, dt.datetime) else value
        for name, value in dataclasses.asdict(task).items()
    }


def _rfc3339(value: dt.datetime) -> str:
    # isoformat, unlike strftime, pads years before 1000 to the four digits RFC 3339 requires.
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _path() -> str:
    return quote(request.url.path.rstrip("/"))


def _next_page(cursor: str) -> str:
    params = [
        (k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True) if k != "cursor"
    ]
    return f"{_path()}?{urlencode([*params, ('cursor', cursor)])}"
