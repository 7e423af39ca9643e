"""The checks the spec names for `bearerAuth` (`x-bearerInfoFunc`) and `streamTicket`
(`x-apikeyInfoFunc`). Each answers Connexion's token info: the subject (`sub`), which becomes
the handlers' `user`, and when the credential stops being good (`exp`, None for a session)."""

from __future__ import annotations

from typing import Any

from connexion.lifecycle import ConnexionRequest
from starlette.concurrency import run_in_threadpool

from storage.tickets import TicketStore
from todo_api.auth.errors import CredentialsUncheckable, InvalidTicket, Unauthenticated
from todo_api.logs import note_user
from todo_api.web.credentials import signed_in
from todo_api.web.problems import Forbidden, as_problem
from todo_api.web.ratelimit import count_for_user


async def bearer_info(token: str, request: ConnexionRequest) -> dict[str, Any]:
    """A path `user_id` must be the credential's subject, so no operation of the
    `/{user_id}/tasks` family can act for anyone else."""
    try:
        principal = await signed_in(request, token)
    except (Unauthenticated, CredentialsUncheckable) as refused:
        # Connexion ranks the failures of an operation's several schemes (the event stream
        # takes a bearer token or a ticket) by their HTTP status: it must see the problem's.
        raise as_problem(refused) from None
    _own_path(request, principal.subject)
    return {"sub": principal.subject, "exp": principal.expires_at}


async def ticket_info(ticket: str, request: ConnexionRequest) -> dict[str, Any]:
    """A ticket from `POST .../events/tickets`: good once, within its lifetime, for the user it
    was made for, and carrying the expiry of the credential that asked for it.

    Only checked here: the stream spends it as it opens (todo_api/live/streams.py), so that a
    request refused on its way there (a bad cursor, a bound) leaves the ticket good."""
    tickets: TicketStore = request.state.tickets
    # No Authorization header: the request was counted against its address's limit already,
    # so guessing tickets is bounded as anonymous calls are.
    checked = await run_in_threadpool(tickets.check, ticket)
    if checked is None:
        raise as_problem(InvalidTicket())
    await _admit(request, checked.user_id)
    return {"sub": checked.user_id, "exp": checked.credential_expires_at, "ticket": ticket}


async def _admit(request: ConnexionRequest, subject: str) -> None:
    note_user(subject)
    await count_for_user(request, subject)
    _own_path(request, subject)


def _own_path(request: ConnexionRequest, subject: str) -> None:
    path_user = request.path_params.get("user_id")
    if path_user is not None and path_user != subject:
        raise Forbidden("The user id in the path is not the signed-in user.")
