"""The chatbot's operations, both path families: a turn (JSON or Server-Sent Events), the
user's conversations and their messages, and ChatKit's endpoint."""

from __future__ import annotations

from typing import Any

from connexion.lifecycle import ConnexionResponse
from starlette.datastructures import URL, Headers
from starlette.responses import Response as StarletteResponse

from todo_api.chat.service import chat_service
from todo_api.chat.stream import streamed_turn
from todo_api.contract import EVENT_STREAM
from todo_api.web.connexion_hooks import request_scope
from todo_api.web.links import next_page
from todo_api.web.representation import JSON, Response, conversation_json, message_json


async def post_chat(
    user: str, body: dict[str, Any], user_id: str | None = None
) -> Response | StarletteResponse:
    scope = request_scope()
    service = chat_service(scope)
    conversation_id, message = body.get("conversation_id"), body["message"]
    await service.chat.check(user, conversation_id)
    tools = await service.admit(scope, user)
    if EVENT_STREAM in Headers(scope=scope).get("accept", ""):
        pending = await service.chat.begin(user, conversation_id, message)
        return streamed_turn(service.chat, pending, tools)
    turn = await service.chat.turn(user, conversation_id, message, tools)
    return turn.as_json(), 200, JSON


def list_conversations(
    user: str, limit: int, cursor: str | None = None, user_id: str | None = None
) -> Response:
    scope = request_scope()
    page = chat_service(scope).chat.conversations_page(user, limit, cursor)
    items = [conversation_json(conversation) for conversation in page.conversations]
    return items, 200, _paged(page.total, page.next_cursor, URL(scope=scope))


def list_messages(
    user: str,
    conversation_id: str,
    limit: int,
    cursor: str | None = None,
    user_id: str | None = None,
) -> Response:
    scope = request_scope()
    page = chat_service(scope).chat.messages_page(user, conversation_id, limit, cursor)
    items = [message_json(message) for message in page.messages]
    return items, 200, _paged(page.total, page.next_cursor, URL(scope=scope))


def delete_conversation(user: str, conversation_id: str, user_id: str | None = None) -> Response:
    chat_service(request_scope()).chat.delete(user, conversation_id)
    return ConnexionResponse(status_code=204)


async def chatkit(user: str, body: dict[str, Any]) -> StarletteResponse:
    # ChatKit's requests are checked by its SDK, against its own types.
    scope = request_scope()
    return await chat_service(scope).chatkit_answer(scope, user, body)


def _paged(total: int, next_cursor: str | None, url: URL) -> dict[str, str]:
    headers = JSON | {"X-Total-Count": str(total)}
    if next_cursor is not None:
        headers["Link"] = f'<{next_page(url, next_cursor)}>; rel="next"'
    return headers
