"""Interop with a live Better Auth server (tests/interop/better_auth), nothing mocked between."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import secrets
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

import httpx2
import pytest
from starlette.testclient import TestClient

from tests.conftest import Client, bearer
from tests.fake_better_auth import ALGORITHMS
from tests.mcp_client import in_process, session, structured
from tests.network import free_port
from tests.prometheus import samples, value
from todo_api.app import create_app
from todo_api.settings import Settings

HARNESS = Path(__file__).parent / "better_auth"
# Where an MCP client's user comes back to; never visited: its query is read from the redirect.
CALLBACK = "https://claude.example/api/mcp/auth_callback"
# The `resource` of the mcp() plugin: the MCP endpoint of this API.
MCP_RESOURCE = "https://todo.example/api/mcp"


@pytest.fixture(scope="module", autouse=True)
def installed() -> None:
    """The harness's packages, as its lock file pins them (CI installs them beforehand)."""
    if not (HARNESS / "node_modules" / "better-auth").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=HARNESS, check=True, timeout=600
        )


class BetterAuth:
    """One `node server.mjs` process; restartable on the same port."""

    def __init__(
        self,
        algorithm: str = "EdDSA",
        rotation_seconds: float | None = None,
        bearer_plugin: bool = True,
        mcp_resource: str | None = None,
        mcp_token_seconds: int | None = None,
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PORT": str(self.port), "JWT_ALG": algorithm}
        if rotation_seconds:
            self.env["ROTATION_SECONDS"] = str(rotation_seconds)
        if not bearer_plugin:
            self.env["BEARER_PLUGIN"] = "off"
        if mcp_resource:
            self.env["MCP_RESOURCE"] = mcp_resource
        if mcp_token_seconds:
            self.env["MCP_TOKEN_SECONDS"] = str(mcp_token_seconds)
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["node", "server.mjs"],
            cwd=HARNESS,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith("ready"), line + self.process.stdout.read()

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(timeout=20)
            self.process = None

    def sign_up(self) -> tuple[str, str]:
        """A new user: their Better Auth id and the session token the bearer() plugin hands out."""
        response = httpx2.post(
            f"{self.url}/api/auth/sign-up/email",
            json={
                "email": f"{uuid.uuid4().hex[:10]}@example.com",
                "password": "correct-horse-battery-staple",
                "name": "Alice",
            },
            headers={"Origin": self.url},
        )
        assert response.status_code == 200, response.text
        # Without the bearer() plugin there is no set-auth-token: the session is in the cookie.
        token = response.headers.get("set-auth-token") or unquote(
            response.cookies["better-auth.session_token"]
        )
        return response.json()["user"]["id"], token

    def jwt(self, session_token: str) -> str:
        """A JWT as `authClient.token()` gets it."""
        response = httpx2.get(f"{self.url}/api/auth/token", headers=bearer(session_token))
        assert response.status_code == 200, response.text
        return response.json()["token"]

    def mcp_tokens(self, session_token: str, resource: str | None) -> dict[str, Any]:
        """What an MCP client such as Claude gets from the mcp() plugin for the signed-in user:
        dynamic client registration, authorization code with PKCE and the user's consent, and
        the token exchange, naming `resource` (RFC 8707) as MCP clients do."""
        signed_in = {**bearer(session_token), "Origin": self.url}
        registered = httpx2.post(
            f"{self.url}/api/auth/oauth2/register",
            json={
                "client_name": "Claude",
                "redirect_uris": [CALLBACK],
                "token_endpoint_auth_method": "none",
                "grant_types": ["authorization_code", "refresh_token"],
                "response_types": ["code"],
            },
        )
        assert registered.status_code == 201, registered.text
        client_id = registered.json()["client_id"]
        verifier = secrets.token_urlsafe(48)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
        named = {"resource": resource} if resource else {}
        asked = httpx2.get(
            f"{self.url}/api/auth/oauth2/authorize",
            params={
                "response_type": "code",
                "client_id": client_id,
                "redirect_uri": CALLBACK,
                "scope": "openid offline_access",
                "state": "st",
                "code_challenge": challenge.rstrip(b"=").decode(),
                "code_challenge_method": "S256",
                **named,
            },
            headers=signed_in,
        )
        # The plugin sends the signed-in user to the consent page with a signed query.
        assert asked.status_code == 302, asked.text
        consent_query = urlsplit(asked.headers["location"]).query
        consented = httpx2.post(
            f"{self.url}/api/auth/oauth2/consent",
            json={"accept": True, "oauth_query": consent_query},
            headers=signed_in,
        )
        assert consented.status_code == 302, consented.text
        back = parse_qs(urlsplit(consented.headers["location"]).query)
        assert back["state"] == ["st"], back
        exchanged = httpx2.post(
            f"{self.url}/api/auth/oauth2/token",
            data={
                "grant_type": "authorization_code",
                "code": back["code"][0],
                "redirect_uri": CALLBACK,
                "client_id": client_id,
                "code_verifier": verifier,
                **named,
            },
        )
        assert exchanged.status_code == 200, exchanged.text
        return {**exchanged.json(), "client_id": client_id}


@pytest.fixture
def better_auth() -> Iterator[Client]:
    servers: list[BetterAuth] = []

    def start(**options: object) -> BetterAuth:
        server = BetterAuth(**options)  # type: ignore[arg-type]
        servers.append(server)
        server.start()
        return server

    yield start
    for server in servers:
        server.stop()


def kid(token: str) -> str:
    import base64

    header = token.split(".")[0]
    return json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))["kid"]


def owns_tasks(api: TestClient, user_id: str, credential: str) -> None:
    created = api.post("/api/tasks", json={"title": "from Better Auth"}, headers=bearer(credential))
    assert created.status_code == 201, created.text
    assert created.json()["user_id"] == user_id
    listed = api.get(f"/api/{user_id}/tasks", headers=bearer(credential))
    assert listed.status_code == 200, listed.text
    assert created.json() in listed.json()


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_jwt_minted_by_better_auth_is_accepted(
    better_auth: Client, serve: Client, algorithm: str
) -> None:
    server = better_auth(algorithm=algorithm)
    user_id, session = server.sign_up()
    token = server.jwt(session)
    api = serve(better_auth_url=server.url)
    owns_tasks(api, user_id, token)


def test_session_token_from_better_auth_is_accepted(better_auth: Client, serve: Client) -> None:
    server = better_auth()
    user_id, session = server.sign_up()
    api = serve(better_auth_url=server.url, better_auth_sessions=True)
    owns_tasks(api, user_id, session)  # signed form, as the set-auth-token header gives it
    owns_tasks(api, user_id, session.split(".")[0])  # the bare session token
    assert api.get("/api/tasks", headers=bearer("no-such-session")).status_code == 401


def test_a_session_refused_for_want_of_the_bearer_plugin_says_what_to_check(
    better_auth: Client, serve: Client
) -> None:
    """The session exists, but without bearer() Better Auth's get-session ignores the header."""
    server = better_auth(bearer_plugin=False)
    user_id, session = server.sign_up()
    cookie = {"Cookie": f"better-auth.session_token={quote(session)}"}
    signed_in = httpx2.get(f"{server.url}/api/auth/get-session", headers=cookie)
    assert signed_in.json()["user"]["id"] == user_id
    api = serve(better_auth_url=server.url, better_auth_sessions=True)
    response = api.get("/api/tasks", headers=bearer(session))
    assert response.status_code == 401
    detail = response.json()["detail"]
    assert "bearer() plugin" in detail
    assert "BETTER_AUTH_SESSIONS" in detail


def test_signed_out_session_is_refused_once_the_cache_expires(
    better_auth: Client, serve: Client
) -> None:
    server = better_auth()
    _, session = server.sign_up()
    api = serve(better_auth_url=server.url, better_auth_sessions=True, session_cache_ttl=0.2)
    assert api.get("/api/tasks", headers=bearer(session)).status_code == 200
    signed_out = httpx2.post(
        f"{server.url}/api/auth/sign-out", headers={**bearer(session), "Origin": server.url}
    )
    assert signed_out.status_code == 200, signed_out.text
    time.sleep(0.3)
    assert api.get("/api/tasks", headers=bearer(session)).status_code == 401


def test_key_rotation_is_followed_without_a_restart(better_auth: Client, serve: Client) -> None:
    server = better_auth(rotation_seconds=1)
    user_id, session = server.sign_up()
    first = server.jwt(session)
    api = serve(better_auth_url=server.url, jwks_refetch_cooldown=0.5)
    owns_tasks(api, user_id, first)
    time.sleep(1.5)
    second = server.jwt(session)
    assert kid(second) != kid(first)
    owns_tasks(api, user_id, second)
    owns_tasks(api, user_id, first)  # the old key stays published for its grace period


def test_better_auth_restarted_with_a_new_key(better_auth: Client, serve: Client) -> None:
    server = better_auth()
    user_id, session = server.sign_up()
    before = server.jwt(session)
    api = serve(better_auth_url=server.url, jwks_refetch_cooldown=0.0)
    owns_tasks(api, user_id, before)

    server.stop()
    server.start()  # the memory adapter starts over: new signing key, new users
    new_user, new_session = server.sign_up()
    after = server.jwt(new_session)
    assert kid(after) != kid(before)
    owns_tasks(api, new_user, after)
    assert api.get("/api/tasks", headers=bearer(before)).status_code == 401


# Better Auth's mcp() plugin (@better-auth/mcp), as Claude or ChatGPT signs a user in with it


def header(token: str) -> dict[str, Any]:
    head = token.split(".")[0]
    return dict(json.loads(base64.urlsafe_b64decode(head + "=" * (-len(head) % 4))))


def checked_as_mcp(api: TestClient, outcome: str) -> float:
    """How many credentials the API took for the mcp() plugin's tokens, with this outcome."""
    scraped = samples(api.get("/api/metrics").text)
    return value(scraped, "todo_api_auth_total", kind="mcp", outcome=outcome)


def test_mcp_access_token_from_better_auth_acts_as_its_user(
    better_auth: Client, serve: Client
) -> None:
    server = better_auth(mcp_resource=MCP_RESOURCE)
    user_id, session = server.sign_up()
    tokens = server.mcp_tokens(session, MCP_RESOURCE)
    assert header(tokens["access_token"])["typ"] == "at+jwt"
    api = serve(better_auth_url=server.url, better_auth_mcp_resource=MCP_RESOURCE)
    assert api.get("/api/tasks", headers=bearer(tokens["access_token"])).status_code == 200
    owns_tasks(api, user_id, tokens["access_token"])
    # As the client keeps going: a refreshed access token, for the same resource.
    refreshed = httpx2.post(
        f"{server.url}/api/auth/oauth2/token",
        data={
            "grant_type": "refresh_token",
            "refresh_token": tokens["refresh_token"],
            "client_id": tokens["client_id"],
            "resource": MCP_RESOURCE,
        },
    )
    assert refreshed.status_code == 200, refreshed.text
    owns_tasks(api, user_id, refreshed.json()["access_token"])


def test_mcp_access_tokens_this_api_must_not_take_are_401(
    better_auth: Client, serve: Client
) -> None:
    server = better_auth(mcp_resource=MCP_RESOURCE)
    _, session = server.sign_up()
    tokens = server.mcp_tokens(session, MCP_RESOURCE)
    token = tokens["access_token"]
    head, payload, signature = token.split(".")
    api = serve(better_auth_url=server.url, better_auth_mcp_resource=MCP_RESOURCE)
    tampered = f"{head}.{payload}.{signature[:-4]}AAAA"
    for credential in (tampered, "garbage", tokens["id_token"]):
        assert api.get("/api/tasks", headers=bearer(credential)).status_code == 401, credential
    # Without `resource`, the plugin issues an opaque token that names no audience.
    opaque = server.mcp_tokens(session, None)["access_token"]
    assert "." not in opaque
    refused = api.get("/api/tasks", headers=bearer(opaque))
    assert refused.status_code == 401
    assert "resource=BETTER_AUTH_MCP_RESOURCE" in refused.json()["detail"]
    # A token for this resource, at an API that is another resource (or takes none).
    elsewhere = serve(
        better_auth_url=server.url, better_auth_mcp_resource="https://other.example/api/mcp"
    )
    assert elsewhere.get("/api/tasks", headers=bearer(token)).status_code == 401
    off = serve(better_auth_url=server.url).get("/api/tasks", headers=bearer(token))
    assert off.status_code == 401
    assert "BETTER_AUTH_MCP_RESOURCE" in off.json()["detail"]


def test_an_expired_mcp_access_token_is_401(better_auth: Client, serve: Client) -> None:
    # Issued two minutes past its end: beyond the 30 seconds allowed for clocks.
    server = better_auth(mcp_resource=MCP_RESOURCE, mcp_token_seconds=-120)
    _, session = server.sign_up()
    token = server.mcp_tokens(session, MCP_RESOURCE)["access_token"]
    api = serve(
        better_auth_url=server.url, better_auth_mcp_resource=MCP_RESOURCE, metrics_enabled=True
    )
    response = api.get("/api/tasks", headers=bearer(token))
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]
    assert checked_as_mcp(api, "refused") == 1


def test_mcp_access_token_while_better_auth_is_down_is_503(
    better_auth: Client, serve: Client
) -> None:
    server = better_auth(mcp_resource=MCP_RESOURCE)
    _, session = server.sign_up()
    token = server.mcp_tokens(session, MCP_RESOURCE)["access_token"]
    server.stop()
    api = serve(
        better_auth_url=server.url,
        better_auth_mcp_resource=MCP_RESOURCE,
        jwks_refetch_cooldown=30,
        metrics_enabled=True,
    )
    response = api.get("/api/tasks", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= 30
    assert checked_as_mcp(api, "unavailable") == 1


def test_mcp_access_token_from_better_auth_calls_the_tools_at_api_mcp(
    better_auth: Client, tmp_path: Path
) -> None:
    """As Claude or ChatGPT would: the metadata that /api/mcp's 401 names points at Better Auth,
    whose token for this resource then calls the tools as its user, through the official SDK's
    client. The resource is the address the API is served at, as a client finds it."""
    port = free_port()
    resource = f"http://127.0.0.1:{port}/api/mcp"
    server = better_auth(mcp_resource=resource)
    user_id, session_token = server.sign_up()
    token = server.mcp_tokens(session_token, resource)["access_token"]
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'todo.db'}",
        better_auth_url=server.url,
        better_auth_mcp_resource=resource,
    )
    with in_process(create_app(settings), port=port) as base:
        url = f"{base}/mcp"
        assert url == resource
        hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        refused = httpx2.post(
            url,
            json=hello,
            headers={"Accept": "application/json, text/event-stream"},
        )
        assert refused.status_code == 401
        metadata = f"http://127.0.0.1:{port}/.well-known/oauth-protected-resource/api/mcp"
        assert f'resource_metadata="{metadata}"' in refused.headers["www-authenticate"]
        document = httpx2.get(metadata).json()
        assert document["resource"] == resource
        # Better Auth's OAuth issuer, the tokens' `iss`; its own metadata (RFC 8414 section 3.1,
        # the well-known path before the issuer's) names the same issuer, as a client checks.
        [issuer] = document["authorization_servers"]
        assert issuer == f"{server.url}/api/auth"
        found = httpx2.get(f"{server.url}/.well-known/oauth-authorization-server/api/auth")
        assert found.status_code == 200, found.text
        assert found.json()["issuer"] == issuer

        async def add_and_list() -> tuple[Any, Any]:
            async with session(url, token=token) as opened:
                added = await opened.call_tool("add_task", {"title": "From Claude"})
                listed = await opened.call_tool("list_tasks", {"user_id": user_id})
                return structured(added), structured(listed)

        added, listed = asyncio.run(add_and_list())
    assert (added["title"], added["user_id"]) == ("From Claude", user_id)
    assert listed["tasks"] == [added]
    assert listed["total"] == 1
