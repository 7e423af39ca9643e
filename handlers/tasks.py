"""Task operations: HTTP in, one use case, HTTP out.

Each handler serves both path families: `/tasks...` and `/{user_id}/tasks...`. For the latter,
the bearer check (handlers/security.py) has already held the path's `user_id` to the token's
subject, so the handler takes it and acts for `user` alone.
"""

from __future__ import annotations

from typing import Any

from connexion.lifecycle import ConnexionResponse
from starlette.datastructures import URL, Headers
from starlette.types import Scope

from storage import Task, TaskStore
from todo_api.usecases import tasks
from todo_api.web import preconditions
from todo_api.web.connexion_hooks import request_scope
from todo_api.web.links import next_page, path_of
from todo_api.web.representation import (
    JSON,
    Response,
    changes_json,
    list_etag,
    task_etag,
    task_json,
)


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
    user_id: str | None = None,
) -> Response:
    scope = request_scope()
    query, page = tasks.list_tasks(
        store(scope),
        user,
        status=status,
        sort=sort,
        order=order,
        limit=limit,
        priority=priority,
        tag=tag,
        q=q,
        due_before=due_before,
        due_after=due_after,
        reminder=reminder,
        cursor=cursor,
    )
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


def create_task(user: str, body: dict[str, Any], user_id: str | None = None) -> Response:
    scope = request_scope()
    key = Headers(scope=scope).get("idempotency-key")
    created = tasks.create_task(store(scope), user, body, idempotency_key=key)
    headers = {"Location": f"{path_of(URL(scope=scope))}/{created.task.id}"}
    if created.replayed:
        headers["Idempotent-Replayed"] = "true"
    return _task(created.task, 201, headers)


def get_task(user: str, task_id: int, user_id: str | None = None) -> Response:
    scope = request_scope()
    task = tasks.get_task(store(scope), user, task_id)
    etag = task_etag(task)
    if preconditions.none_match(etag, Headers(scope=scope)):
        return _not_modified(etag)
    return _task(task)


def update_task(
    user: str, task_id: int, body: dict[str, Any], user_id: str | None = None
) -> Response:
    scope = request_scope()
    if_match = preconditions.if_match(task_id, Headers(scope=scope))
    return _task(tasks.update_task(store(scope), user, task_id, body, if_match=if_match))


# PUT is partial too: an older frontend must not wipe fields it does not know about.
put_task = update_task


def delete_task(user: str, task_id: int, user_id: str | None = None) -> Response:
    scope = request_scope()
    if_match = preconditions.if_match(task_id, Headers(scope=scope))
    tasks.delete_task(store(scope), user, task_id, if_match=if_match)
    return ConnexionResponse(status_code=204)


def complete_task(
    user: str, task_id: int, body: dict[str, Any] | None = None, user_id: str | None = None
) -> Response:
    scope = request_scope()
    if_match = preconditions.if_match(task_id, Headers(scope=scope))
    completed = (body or {}).get("completed")
    return _task(tasks.complete_task(store(scope), user, task_id, completed, if_match=if_match))


post_complete_task = complete_task


def restore_task(user: str, task_id: int, user_id: str | None = None) -> Response:
    return _task(tasks.restore_task(store(request_scope()), user, task_id))


def list_changes(
    user: str, limit: int, cursor: str | None = None, user_id: str | None = None
) -> Response:
    page = tasks.list_changes(store(request_scope()), user, limit, cursor)
    return changes_json(page), 200, JSON


def store(scope: Scope) -> TaskStore:
    store: TaskStore = scope["state"]["store"]  # set by todo_api.app at startup
    return store


def _task(task: Task, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return task_json(task), status, JSON | {"ETag": task_etag(task)} | (headers or {})


def _not_modified(etag: str) -> Response:
    return ConnexionResponse(status_code=304, headers={"ETag": etag})
