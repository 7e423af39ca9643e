"""Interop with a live Better Auth server (tests/interop/better_auth), nothing mocked between."""

from __future__ import annotations

import json
import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, unquote

import httpx2
import pytest
from starlette.testclient import TestClient

from tests.conftest import Client, bearer
from tests.fake_better_auth import ALGORITHMS
from tests.network import free_port

HARNESS = Path(__file__).parent / "better_auth"


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
    ) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {**os.environ, "PORT": str(self.port), "JWT_ALG": algorithm}
        if rotation_seconds:
            self.env["ROTATION_SECONDS"] = str(rotation_seconds)
        if not bearer_plugin:
            self.env["BEARER_PLUGIN"] = "off"
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
