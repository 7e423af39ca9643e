"""The check the spec names for `bearerAuth` (`x-bearerInfoFunc`)."""

from __future__ import annotations

import inspect
from typing import Any

from connexion.exceptions import OAuthProblem
from connexion.lifecycle import ConnexionRequest
from starlette.concurrency import run_in_threadpool

from storage.tickets import TicketStore
from todo_api.auth.authenticator import Authenticator
from todo_api.logs import note_user
from todo_api.web.problems import Forbidden
from todo_api.web.ratelimit import count_for_user, counted_as_a_guess


async def bearer_info(token: str, request: ConnexionRequest) -> dict[str, str]:
    """The credential's subject becomes the handlers' `user`.

    A path `user_id` must be that subject, so no operation of the `/{user_id}/tasks` family
    can act for anyone else.
    """
    authenticator: Authenticator = request.state.authenticator
    subject = authenticator.known(token)
    if subject is None:
        async with counted_as_a_guess(request):
            subject = await authenticator.subject(token)
    await _admit(request, subject)
    return {"sub": subject}


async def ticket_info(ticket: str, request: ConnexionRequest) -> dict[str, Any]:
    """The check the spec names for `streamTicket` (`x-apikeyInfoFunc`): a ticket from
    `POST .../events/tickets`, good once, within its lifetime, for the user it was made for."""
    tickets: TicketStore = request.state.tickets
    # No Authorization header: the request was counted against its address's limit already,
    # so guessing tickets is bounded as anonymous calls are.
    redeemed = await run_in_threadpool(tickets.redeem, ticket)
    if redeemed is None:
        raise OAuthProblem(detail="Invalid ticket: unknown, already used, or expired")
    await _admit(request, redeemed.user_id)
    return {"sub": redeemed.user_id, "credential_expires_at": redeemed.credential_expires_at}


async def _admit(request: ConnexionRequest, subject: str) -> None:
    note_user(subject)
    await count_for_user(request, subject)
    path_user = request.path_params.get("user_id")
    if path_user is not None and path_user != subject:
        raise Forbidden("The user id in the path is not the signed-in user.")


# Connexion reads the check's signature on every request (to see which arguments it takes); a
# signature fixed on the function makes that a lookup.
bearer_info.__signature__ = inspect.signature(bearer_info)  # type: ignore[attr-defined]
ticket_info.__signature__ = inspect.signature(ticket_info)  # type: ignore[attr-defined]
