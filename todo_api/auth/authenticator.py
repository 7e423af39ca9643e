"""Bearer credentials: the check behind `bearerAuth`, and dev-token minting.

Four kinds of credential are accepted, each only when configured:
- HS256 JWTs signed with the shared `BETTER_AUTH_SECRET`;
- JWTs Better Auth's jwt() plugin signs with an asymmetric key published as JWKS;
- OAuth access tokens (RFC 9068 JWTs, `typ: at+jwt`) that Better Auth's mcp() plugin issues
  to agents such as Claude or ChatGPT, signed with those same keys and bound to a resource;
- Better Auth session tokens (not JWTs), checked with Better Auth's get-session endpoint.
The path is chosen by configuration and the token's form, and each path pins its own key type,
so no token can have a public key used as an HMAC secret or the reverse (RFC 8725 section 3.1).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from todo_api.auth.cache import TtlCache, seconds_until
from todo_api.auth.errors import CredentialsUncheckable, Unauthenticated
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

HMAC_ALGORITHM = "HS256"
# Tolerated clock difference between Better Auth and this service.
LEEWAY = dt.timedelta(seconds=30)
JWT_FORM = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*\.[A-Za-z0-9_-]*")
# RFC 6750 section 2.1: what a bearer credential may look like at all; nothing else is passed on.
B64TOKEN = re.compile(r"[A-Za-z0-9._~+/-]+=*")
MAX_CREDENTIAL_LENGTH = 8192
# RFC 9068 section 4: the header type that marks an OAuth access token, with or without its prefix.
ACCESS_TOKEN_TYPES = frozenset({"at+jwt", "application/at+jwt"})
# How many verified tokens are remembered, and for how long at most.
VERIFIED_TOKENS = 10_000
VERIFIED_TOKEN_SECONDS = 60.0


@dataclass(frozen=True)
class Expected:
    """The issuer and audience a token must carry; None leaves that claim unchecked."""

    issuer: str | None = None
    audience: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who a good credential stands for, and when it stops being good: a JWT's `exp` plus
    the leeway. None for a session token, whose end Better Auth decides."""

    subject: str
    expires_at: dt.datetime | None = None


@dataclass(frozen=True)
class Verified:
    """A token verified lately: whom it names, and for a JWKS token the key that verified it,
    which must still be the published one for the token to be taken again unchecked."""

    principal: Principal
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
        mcp_claims: Expected | None = None,
        sessions: SessionIntrospector | None = None,
        verified: TtlCache[Verified] | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._metrics = metrics
        self._secret = secret
        self._secret_claims = secret_claims
        self._jwks = jwks
        self._jwks_claims = jwks_claims
        # The issuer and resource of the mcp() plugin's access tokens; None refuses them.
        if mcp_claims is not None and mcp_claims.audience is None:
            raise ValueError("access tokens are accepted only for a resource (the audience)")
        self._mcp_claims = mcp_claims
        self._sessions = sessions
        # Tokens verified lately, keyed by the whole token, signature included: only the very
        # string that was verified is ever answered from here.
        self._verified = (
            verified
            if verified is not None
            else TtlCache[Verified](VERIFIED_TOKENS, max_lifetime=VERIFIED_TOKEN_SECONDS)
        )

    def known(self, token: str) -> Principal | None:
        """A token verified a moment ago, without checking it again."""
        verified = self._verified.get(token)
        if verified is None:
            return None
        # A JWKS token only while its key is still published (Better Auth may withdraw it).
        if verified.signed_with is not None and not (
            self._jwks is not None and self._jwks.is_current(*verified.signed_with)
        ):
            return None
        self._count("cached", "accepted")
        return verified.principal

    async def verify(self, token: str) -> Principal:
        """Whom the credential stands for; Unauthenticated or CredentialsUncheckable otherwise."""
        known = self.known(token)
        if known is not None:
            return known
        kind = "malformed"
        try:
            if len(token) > MAX_CREDENTIAL_LENGTH or not B64TOKEN.fullmatch(token):
                raise Unauthenticated("Invalid token: malformed bearer credential")
            header = _jwt_header(token)
            algorithm = header.get("alg") if header is not None else None
            if header is None:
                kind = "session"
                principal = Principal(await self._session_subject(token))
            elif algorithm == HMAC_ALGORITHM:
                kind = "hs256"
                principal = self._shared_secret_principal(token)
            elif isinstance(algorithm, str) and algorithm in ASYMMETRIC_ALGORITHMS:
                if _is_access_token(header):
                    kind = "mcp"
                    principal = await self._access_token_principal(token, header)
                else:
                    kind = "jwks"
                    principal = await self._jwks_principal(token, header, self._jwks_claims)
            else:
                raise Unauthenticated("Invalid token: its algorithm is not accepted")
            if not is_user_id(principal.subject):
                raise Unauthenticated("Invalid token: the subject is not a usable user id")
        except Unauthenticated:
            self._count(kind, "refused")
            raise
        except CredentialsUncheckable:
            self._count(kind, "unavailable")
            raise
        self._count(kind, "accepted")
        return principal

    def _count(self, kind: str, outcome: str) -> None:
        if self._metrics is not None:
            self._metrics.auth.labels(kind, outcome).inc()

    def _shared_secret_principal(self, token: str) -> Principal:
        """An HS256 token, remembered while it is good: only a new secret (a restart) could
        revoke it."""
        if self._secret is None:
            raise Unauthenticated("Invalid token: HS256 tokens are not accepted here")
        claims = _claims(token, self._secret, [HMAC_ALGORITHM], self._secret_claims)
        return self._remember(token, claims, None)

    def _remember(
        self,
        token: str,
        claims: dict[str, Any],
        signed_with: tuple[str, str, VerificationKey] | None,
    ) -> Principal:
        # PyJWT read `exp` as int(exp), and accepts the token until exp + leeway.
        # Whole numbers: a huge but valid exp must not overflow a float.
        expires = int(claims["exp"]) + int(LEEWAY.total_seconds())
        principal = Principal(claims["sub"], _instant(expires))
        if is_user_id(principal.subject):
            self._verified.put(token, Verified(principal, signed_with), seconds_until(expires))
        return principal

    async def _access_token_principal(self, token: str, header: dict[str, Any]) -> Principal:
        """An OAuth access token from Better Auth's mcp() plugin: good only for the resource
        configured here (RFC 8707), for a user (not a client acting for itself), and as a plain
        bearer token (not bound to a DPoP key this service cannot check)."""
        if self._mcp_claims is None:
            raise Unauthenticated(MCP_OFF)

        def check(claims: dict[str, Any]) -> None:
            client = claims.get("client_id", claims.get("azp"))
            if not isinstance(client, str) or not client:
                raise Unauthenticated("Invalid token: an access token names no client (client_id)")
            if claims["sub"] == client:
                raise Unauthenticated(
                    "Invalid token: a client credentials token acts for no user; sign in a user "
                    "through the authorization code flow"
                )
            if "cnf" in claims:
                raise Unauthenticated(
                    "Invalid token: it is bound to a DPoP key, which this API does not check; "
                    "register the client without dpop_bound_access_tokens"
                )

        return await self._jwks_principal(token, header, self._mcp_claims, check)

    async def _jwks_principal(
        self,
        token: str,
        header: dict[str, Any],
        expected: Expected,
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> Principal:
        if self._jwks is None:
            raise Unauthenticated("Invalid token: asymmetric tokens are not accepted here")
        kid = header.get("kid")
        if not isinstance(kid, str):
            raise Unauthenticated("Invalid token: it names no signing key (kid)")
        try:
            key = await self._jwks.key(kid, header["alg"])
        except UnknownKey:
            raise Unauthenticated("Invalid token: its signing key is not published") from None
        except KeysUnavailable as exc:
            raise CredentialsUncheckable(
                "The signing keys cannot be fetched.", exc.retry_after
            ) from None
        claims = _claims(token, key.key, sorted(key.algorithms), expected)
        if check is not None:
            check(claims)
        # Remembered with its key: taken again unchecked only while that key is still the
        # published one, from a key set fresh enough (JwksCache.is_current).
        return self._remember(token, claims, (kid, header["alg"], key))

    async def _session_subject(self, token: str) -> str:
        if self._sessions is None:
            raise Unauthenticated(SESSIONS_OFF if self._mcp_claims is None else OPAQUE_OFF)
        try:
            return await self._sessions.subject(token)
        except SessionRejected:
            raise Unauthenticated(SESSION_REFUSED) from None
        except SessionsUnavailable:
            raise CredentialsUncheckable("Sessions cannot be checked right now.", 5) from None


# A developer reads these while wiring a frontend: they name what to check, not just what failed.
SESSIONS_OFF = (
    "Invalid token: not a JWT. If it is a Better Auth session token, turn sessions on here "
    "(BETTER_AUTH_SESSIONS=1 with BETTER_AUTH_URL) and enable Better Auth's bearer() plugin; "
    "or send a JWT from its jwt() plugin."
)
MCP_OFF = (
    "Invalid token: an OAuth access token (typ at+jwt). To accept those of Better Auth's mcp() "
    "plugin, set BETTER_AUTH_MCP_RESOURCE to the plugin's `resource`."
)
OPAQUE_OFF = (
    "Invalid token: not a JWT. Better Auth's mcp() plugin issues an opaque access token when the "
    "client names no resource: the client must send resource=BETTER_AUTH_MCP_RESOURCE (RFC 8707) "
    "in its authorization and token requests to get a JWT this API can check."
)
SESSION_REFUSED = (
    "Invalid token: Better Auth's get-session does not accept it. If the session exists, check "
    "that Better Auth's bearer() plugin is enabled (without it, get-session ignores a bearer "
    "token) and that BETTER_AUTH_SESSIONS is on; otherwise sign in again."
)


def _is_access_token(header: dict[str, Any]) -> bool:
    typ = header.get("typ")
    return isinstance(typ, str) and typ.lower() in ACCESS_TOKEN_TYPES


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
        raise Unauthenticated(f"Invalid token: {exc}") from None


def mint_token(secret: str, subject: str, lifetime: dt.timedelta, expected: Expected) -> str:
    """An HS256 token like the ones this service accepts, for Swagger UI, curl and tests."""
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {"sub": subject, "iat": now, "exp": now + lifetime}
    if expected.issuer:
        claims["iss"] = expected.issuer
    if expected.audience:
        claims["aud"] = expected.audience
    return jwt.encode(claims, secret, algorithm=HMAC_ALGORITHM)


def _instant(timestamp: int) -> dt.datetime | None:
    try:
        return dt.datetime.fromtimestamp(timestamp, dt.UTC)
    except (ValueError, OverflowError, OSError):
        # Past year 9999: as good as never expiring.
        return None
