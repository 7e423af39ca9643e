"""Live updates: the user's event stream, and tickets that open it from a browser. Both path
families, as in handlers/tasks.py."""

from __future__ import annotations

from typing import Any

from starlette.datastructures import Headers

from storage.tickets import TicketStore
from todo_api.live.stream import EventStream
from todo_api.live.streams import LiveUpdates
from todo_api.web.connexion_hooks import request_scope
from todo_api.web.representation import JSON, Response, rfc3339


async def stream_events(
    user: str, token_info: dict[str, Any], cursor: str | None = None, user_id: str | None = None
) -> EventStream:
    scope = request_scope()
    live: LiveUpdates = scope["state"]["live"]
    # A reconnecting EventSource sends the last id it got; it is newer than the URL's cursor.
    last_id = Headers(scope=scope).get("last-event-id")
    return await live.open(
        user,
        last_id or cursor,
        token_info["exp"],
        cursor_parameter="Last-Event-ID" if last_id else "cursor",
        # Set when a ticket, not a bearer token, admitted the request (handlers/security.py).
        ticket=token_info.get("ticket"),
    )


def issue_ticket(user: str, token_info: dict[str, Any], user_id: str | None = None) -> Response:
    tickets: TicketStore = request_scope()["state"]["tickets"]
    ticket = tickets.issue(user, token_info["exp"])
    body = {"ticket": ticket.value, "expires_at": rfc3339(ticket.expires_at)}
    return body, 201, JSON
