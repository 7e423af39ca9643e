"""Live updates: the user's event stream, and tickets that open it from a browser."""

from __future__ import annotations

import datetime as dt
from typing import Any

from starlette.datastructures import Headers

from handlers.representation import rfc3339
from handlers.tasks import JSON, Response
from storage.tickets import TicketStore
from todo_api.auth.authenticator import expires_at
from todo_api.live.stream import EventStream
from todo_api.live.streams import LiveUpdates
from todo_api.web.connexion_hooks import request_scope


async def stream_events(
    user: str, token_info: dict[str, Any], cursor: str | None = None
) -> EventStream:
    scope = request_scope()
    live: LiveUpdates = scope["state"]["live"]
    # A reconnecting EventSource sends the last id it got; it is newer than the URL's cursor.
    last_id = Headers(scope=scope).get("last-event-id")
    return await live.open(
        user,
        last_id or cursor,
        _credential_expiry(scope, token_info),
        cursor_parameter="Last-Event-ID" if last_id else "cursor",
    )


def issue_ticket(user: str, token_info: dict[str, Any]) -> Response:
    scope = request_scope()
    tickets: TicketStore = scope["state"]["tickets"]
    ticket = tickets.issue(user, _credential_expiry(scope, token_info))
    body = {"ticket": ticket.value, "expires_at": rfc3339(ticket.expires_at)}
    return body, 201, JSON


def _credential_expiry(scope: Any, token_info: dict[str, Any]) -> dt.datetime | None:
    """When the credential of this request expires: a ticket's, or the bearer token's."""
    if "credential_expires_at" in token_info:
        expiry: dt.datetime | None = token_info["credential_expires_at"]
        return expiry
    _, _, token = Headers(scope=scope).get("authorization", "").partition(" ")
    return expires_at(token.strip())
