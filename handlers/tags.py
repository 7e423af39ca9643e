"""The user's tags: counted, and renamed across all of the user's tasks. Both path families,
as in handlers/tasks.py."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import URL

from handlers.tasks import store
from todo_api.usecases import tags
from todo_api.web.connexion_hooks import request_scope
from todo_api.web.links import next_page
from todo_api.web.representation import JSON, Response, tag_json


def list_tags(
    user: str, limit: int, cursor: str | None = None, user_id: str | None = None
) -> Response:
    scope = request_scope()
    page = tags.list_tags(store(scope), user, limit, cursor)
    headers = {"X-Total-Count": str(page.total)}
    if page.next_cursor is not None:
        headers["Link"] = f'<{next_page(URL(scope=scope), page.next_cursor)}>; rel="next"'
    return [tag_json(tag) for tag in page.tags], 200, JSON | headers


def rename_tag(user: str, tag: str, body: dict[str, Any], user_id: str | None = None) -> Response:
    renamed = tags.rename_tag(store(request_scope()), user, tag, body)
    return tag_json(renamed), 200, JSON
