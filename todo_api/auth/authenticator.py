"""Bearer credentials: the check behind `bearerAuth`, and dev-token minting.

Three kinds of credential are accepted, each only when configured:
- HS256 JWTs signed with the shared `BETTER_AUTH_SECRET`;
- JWTs Better Auth's jwt() plugin signs with an asymmetric key published as JWKS;
- Better Auth session tokens (not JWTs), checked with Better Auth's get-session endpoint.
The path is chosen by configuration and the token's form, and each path pins its own key type,
so no token can have a public key used as an HMAC secret or the reverse (RFC 8725 section 3.1).
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any

import jwt
from connexion.exceptions import OAuthProblem

from todo_api.auth.cache import TtlCache, seconds_until
from todo_api.auth.jwks import (
    ASYMMETRIC_ALGORITHMS,
    JwksCache,
    KeysUnavailable,
    UnknownKey,
    VerificationKey,
)
from todo_api.auth.sessions import SessionIntrospector, SessionRejected, SessionsUnavailable
from todo_api.contract import is_user_id
from todo_api.metrics import Metrics
from todo_api.web.problems import Unavailable

HMAC_ALGORITHM = "HS256"
# Tolerated clock difference between Better Auth and this service.
LEEWAY = dt.timedelta(seconds=30)
JWT_FORM = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
# RFC 6750 section 2.1: what a bearer credential may look like at all; nothing else is passed on.
B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
MAX_CREDENTIAL_LENGTH = 8192
# How many verified tokens are remembered, and for how long at most.
VERIFIED_TOKENS = 10_000
VERIFIED_TOKEN_SECONDS = 60.0


@dataclass(frozen=True)
class Expected:
    """The issuer and audience a token must carry; None leaves that claim unchecked."""

    issuer: str | None = None
    audience: str | None = None


@dataclass(frozen=True)
class Verified:
    """A token verified lately: its subject, and for a JWKS token the key that verified it,
    which must still be the published one for the token to be taken again unchecked."""

    subject: str
    # kid, alg and the key, for a JWKS token.
    signed_with: tuple[str, str, VerificationKey] | None = None


class Authenticator:
    def __init__(
        self,
        *,
        secret: str | None = None,
        secret_claims: Expected = Expected(),
        jwks: JwksCache | None = None,
        jwks_claims: Expected = Expected(),
        sessions: SessionIntrospector | None = None,
        verified: TtlCache[Verified] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._secret = secret
        self._secret_claims = secret_claims
        self._jwks = jwks
        self._jwks_claims = jwks_claims
        self._sessions = sessions
        # Tokens verified lately, keyed by the whole token, signature included: only the very
        # string that was verified is ever answered from here.
        self._verified = (
            verified
            if verified is not None
            else TtlCache[Verified](VERIFIED_TOKENS, max_lifetime=VERIFIED_TOKEN_SECONDS)
        )

    def known(self, token: str) -> str | None:
        """The subject of a token verified a moment ago, without checking it again."""
        verified = self._verified.get(token)
        if verified is None:
            return None
        # A JWKS token only while its key is still published (Better Auth may withdraw it).
        if verified.signed_with is not None and not (
            self._jwks is not None and self._jwks.is_current(*verified.signed_with)
        ):
            return None
        self._count("cached", "accepted")
        return verified.subject

    async def subject(self, token: str) -> str:
        """The user id the credential stands for; raises a 401 or 503 problem otherwise."""
        known = self.known(token)
        if known is not None:
            return known
        kind = "malformed"
        try:
            if len(token) > MAX_CREDENTIAL_LENGTH or not B64TOKEN.fullmatch(token):
                raise OAuthProblem(detail="Invalid token: malformed bearer credential")
            header = _jwt_header(token)
            algorithm = header.get("alg") if header is not None else None
            if header is None:
                kind = "session"
                subject = await self._session_subject(token)
            elif algorithm == HMAC_ALGORITHM:
                kind = "hs256"
                subject = self._shared_secret_subject(token)
            elif isinstance(algorithm, str) and algorithm in ASYMMETRIC_ALGORITHMS:
                kind = "jwks"
                subject = await self._jwks_subject(token, header)
            else:
                raise OAuthProblem(detail="Invalid token: its algorithm is not accepted")
            if not is_user_id(subject):
                raise OAuthProblem(detail="Invalid token: the subject is not a usable user id")
        except OAuthProblem:
            self._count(kind, "refused")
            raise
        except Unavailable:
            self._count(kind, "unavailable")
            raise
        self._count(kind, "accepted")
        return subject

    def _count(self, kind: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.auth.labels(kind, outcome).inc()

    def _shared_secret_subject(self, token: str) -> Any:
        """The subject of an HS256 token, remembered while the token is good: only a new
        secret (a restart) could revoke it."""
        if self._secret is None:
            raise OAuthProblem(detail="Invalid token: HS256 tokens are not accepted here")
        claims = _claims(token, self._secret, [HMAC_ALGORITHM], self._secret_claims)
        subject = claims["sub"]
        self._remember(token, claims, Verified(subject))
        return subject

    def _remember(self, token: str, claims: dict[str, Any], verified: Verified) -> None:
        if is_user_id(verified.subject):
            # PyJWT read `exp` as int(exp), and accepts the token until exp + leeway.
            # Whole numbers: a huge but valid exp must not overflow a float.
            expires = int(claims["exp"]) + int(LEEWAY.total_seconds())
            self._verified.put(token, verified, seconds_until(expires))

    async def _jwks_subject(self, token: str, header: dict[str, Any]) -> Any:
        if self._jwks is None:
            raise OAuthProblem(detail="Invalid token: asymmetric tokens are not accepted here")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise OAuthProblem(detail="Invalid token: it names no signing key (kid)")
        try:
            key = await self._jwks.key(kid, header["alg"])
        except UnknownKey:
            raise OAuthProblem(detail="Invalid token: its signing key is not published") from None
        except KeysUnavailable as exc:
            raise Unavailable("The signing keys cannot be fetched.", exc.retry_after) from None
        claims = _claims(token, key.key, sorted(key.algorithms), self._jwks_claims)
        # Remembered with its key: taken again unchecked only while that key is still the
        # published one, from a key set fresh enough (JwksCache.is_current).
        self._remember(token, claims, Verified(claims["sub"], (kid, header["alg"], key)))
        return claims["sub"]

    async def _session_subject(self, token: str) -> str:
        if self._sessions is None:
            raise OAuthProblem(detail=SESSIONS_OFF)
        try:
            return await self._sessions.subject(token)
        except SessionRejected:
            raise OAuthProblem(detail=SESSION_REFUSED) from None
        except SessionsUnavailable:
            raise Unavailable("Sessions cannot be checked right now.", 5) from None


# A developer reads these while wiring a frontend: they name what to check, not just what failed.
SESSIONS_OFF = (
    "Invalid token: not a JWT. If it is a Better Auth session token, turn sessions on here "
    "(BETTER_AUTH_SESSIONS=1 with BETTER_AUTH_URL) and enable Better Auth's bearer() plugin; "
    "or send a JWT from its jwt() plugin."
)
SESSION_REFUSED = (
    "Invalid token: Better Auth's get-session does not accept it. If the session exists, check "
    "that Better Auth's bearer() plugin is enabled (without it, get-session ignores a bearer "
    "token) and that BETTER_AUTH_SESSIONS is on; otherwise sign in again."
)


def _jwt_header(token: str) -> dict[str, Any] | None:
    """The JOSE header of a token of JWT form; None for anything else (a session token)."""
    if not JWT_FORM.fullmatch(token):
        return None
    try:
        header = jwt.get_unverified_header(token)
    except jwt.PyJWTError:
        return None
    return header if isinstance(header, dict) else None


def _claims(token: str, key: Any, algorithms: list[str], expected: Expected) -> dict[str, Any]:
    try:
        return jwt.decode(
            token,
            key,
            algorithms=algorithms,
            issuer=expected.issuer,
            audience=expected.audience,
            leeway=LEEWAY,
            options={
                "require": ["exp", "sub"],
                "verify_aud": expected.audience is not None,
                "verify_iss": expected.issuer is not None,
            },
        )
    except (jwt.PyJWTError, ValueError, TypeError, OverflowError) as exc:
        # Anything a hostile token provokes while being parsed is a 401, never a 500.
        raise OAuthProblem(detail=f"Invalid token: {exc}") from None


def mint_token(secret: str, subject: str, lifetime: dt.timedelta, expected: Expected) -> str:
    """An HS256 token like the ones this service accepts, for Swagger UI, curl and tests."""
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + lifetime}
    if expected.issuer:
        claims["iss"] = expected.issuer
    if expected.audience:
        claims["aud"] = expected.audience
    return jwt.encode(claims, secret, algorithm=HMAC_ALGORITHM)


def expires_at(token: str) -> dt.datetime | None:
    """When a credential that has already been verified expires: a JWT's `exp`. None for a
    session token, whose end Better Auth decides."""
    if _jwt_header(token) is None:
        return None
    # Read, not verified: the caller verified this very string before asking.
    claims = jwt.decode(token, options={"verify_signature": False})
    exp: Any = claims.get("exp")
    try:
        return dt.datetime.fromtimestamp(int(exp), dt.UTC) + LEEWAY
    except (TypeError, ValueError, OverflowError, OSError):
        return None
