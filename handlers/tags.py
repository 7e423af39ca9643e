"""The user's tags: counted, and renamed across all of the user's tasks."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import URL

from handlers.representation import tag_json
from handlers.tasks import JSON, Response, next_page, store
from todo_api import task_fields
from todo_api.web.connexion_hooks import request_scope


def list_tags(user: str, limit: int, cursor: str | None = None) -> Response:
    scope = request_scope()
    page = store(scope).list_tags(user, limit, cursor)
    headers = {"X-Total-Count": str(page.total)}
    if page.next_cursor is not None:
        headers["Link"] = f'<{next_page(URL(scope=scope), page.next_cursor)}>; rel="next"'
    return [tag_json(tag) for tag in page.tags], 200, JSON | headers


def rename_tag(user: str, tag: str, body: dict[str, Any]) -> Response:
    to = task_fields.tag(body["to"], "#/to")
    return tag_json(store(request_scope()).rename_tag(user, task_fields.tag(tag), to)), 200, JSON
