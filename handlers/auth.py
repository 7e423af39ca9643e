"""Bearer tokens: the verifier Connexion calls for `bearerAuth`, and the minting of dev tokens."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import jwt
from connexion.exceptions import OAuthProblem
from connexion.lifecycle import ConnexionRequest

from handlers.problems import Forbidden

ALGORITHMS = ["HS256"]
# A user id as the spec's UserId parameter allows it: 1-255 characters, no control characters.
SUBJECT = re.compile(r"[^\x00-\x1f\x7f-\x9f\ud800-\udfff]{1,255}")
# Tolerated clock difference between Better Auth and this service.
LEEWAY = dt.timedelta(seconds=30)


class TokenVerifier:
    """Checks HS256 tokens signed with the shared Better Auth secret."""

    def __init__(self, secret: str, issuer: str | None = None, audience: str | None = None):
        self._secret = secret
        self._issuer = issuer
        self._audience = audience

    def subject(self, token: str) -> str:
        """The token's user id; raises OAuthProblem (401) for any token it does not accept."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=ALGORITHMS,
                issuer=self._issuer,
                audience=self._audience,
                leeway=LEEWAY,
                options={
                    "require": ["exp", "sub"],
                    "verify_aud": self._audience is not None,
                    "verify_iss": self._issuer is not None,
                },
            )
        except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
            # Anything a hostile token provokes while being parsed is a 401, never a 500.
            raise OAuthProblem(detail=f"Invalid token: {exc}") from None
        subject = claims["sub"]
        if not isinstance(subject, str) or not SUBJECT.fullmatch(subject):
            raise OAuthProblem(detail="Invalid token: the subject is not a usable user id")
        return subject

    def mint(self, subject: str, lifetime: dt.timedelta) -> str:
        now = dt.datetime.now(dt.UTC)
        claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + lifetime}
        if self._issuer:
            claims["iss"] = self._issuer
        if self._audience:
            claims["aud"] = self._audience
        return jwt.encode(claims, self._secret, algorithm=ALGORITHMS[0])


def bearer_info(token: str, request: ConnexionRequest) -> dict[str, str]:
    """Connexion's `x-bearerInfoFunc`: the token's subject becomes the handlers' `user`.

    A path `user_id` must be that subject, so no operation of the `/{user_id}/tasks` family
    can act for anyone else.
    """
    verifier: TokenVerifier = request.state.verifier
    subject = verifier.subject(token)
    path_user = request.path_params.get("user_id")
    if path_user is not None and path_user != subject:
        raise Forbidden("The user id in the path is not the signed-in user.")
    return {"sub": subject}
