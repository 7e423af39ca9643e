"""The bearer check every door shares: who a token is, counted as a guess while it is checked,
then counted for its user (todo_api/web/ratelimit.py) and named in the request's log line."""

from __future__ import annotations

from connexion.lifecycle import ConnexionRequest

from todo_api.auth.authenticator import Authenticator, Principal
from todo_api.logs import note_user
from todo_api.web.ratelimit import count_for_user, counted_as_a_guess


async def signed_in(request: ConnexionRequest, token: str) -> Principal:
    """The token's principal. Raises Unauthenticated or CredentialsUncheckable as the
    authenticator does, and TooManyRequests past the address's or the user's limit."""
    authenticator: Authenticator = request.state.authenticator
    principal = authenticator.known(token)
    if principal is None:
        async with counted_as_a_guess(request):
            principal = await authenticator.verify(token)
    note_user(principal.subject)
    await count_for_user(request, principal.subject)
    return principal
