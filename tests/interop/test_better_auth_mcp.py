"""Access tokens of Better Auth's mcp() plugin (RFC 9068 JWTs, `typ: at+jwt`), against a fake
Better Auth; tests/interop/test_better_auth_live.py gets them from the real one."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import Client, bearer, counting_jwt_decode
from tests.fake_better_auth import FakeBetterAuth, SigningKey, better_auth_claims
from tests.network import free_port
from todo_api.settings import ConfigError, Settings

RESOURCE = "https://todo.example/api/mcp"


@pytest.fixture
def fake() -> Iterator[FakeBetterAuth]:
    server = FakeBetterAuth()
    yield server
    server.stop()


@pytest.fixture
def key(fake: FakeBetterAuth) -> SigningKey:
    key = SigningKey("EdDSA")
    fake.published = [key.jwk()]
    return key


@pytest.fixture
def api(fake: FakeBetterAuth, key: SigningKey, serve: Client) -> TestClient:
    return serve(better_auth_url=fake.url, better_auth_mcp_resource=RESOURCE)


def access_claims(url: str, subject: str = "ba-user-1", **overrides: Any) -> dict:
    """Claims shaped like the ones @better-auth/oauth-provider 1.7 puts in an access token
    issued by the Better Auth at `url`."""
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "aud": [RESOURCE, f"{url}/api/auth/oauth2/userinfo"],
        "client_id": "claude-client",
        "azp": "claude-client",
        "scope": "openid profile offline_access",
        "sid": "session-1",
        "iss": f"{url}/api/auth",
        "iat": now,
        "exp": now + dt.timedelta(hours=1),
        "jti": "token-1",
    }
    claims.update(overrides)
    return {k: v for k, v in claims.items() if v is not None}


def access_token(key: SigningKey, claims: dict, typ: str = "at+jwt") -> str:
    return key.sign(claims, typ=typ)


def refused(response: Any) -> str:
    assert response.status_code == 401, response.text
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    return str(response.json()["detail"])


def test_an_access_token_for_this_resource_acts_as_its_user(
    api: TestClient, fake: FakeBetterAuth, key: SigningKey
) -> None:
    token = access_token(key, access_claims(fake.url, "agent-user"))
    created = api.post("/api/tasks", json={"title": "from Claude"}, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert created.json()["user_id"] == "agent-user"
    assert api.get("/api/agent-user/tasks", headers=bearer(token)).status_code == 200
    # The media type form of the header type is the same type (RFC 9068 section 4).
    typed = access_token(key, access_claims(fake.url, "agent-user"), typ="application/at+jwt")
    assert api.get("/api/tasks", headers=bearer(typed)).status_code == 200


def test_access_tokens_are_refused_unless_a_resource_is_set(
    fake: FakeBetterAuth, key: SigningKey, serve: Client
) -> None:
    """Even one whose issuer and audience the jwt() path would take: it was issued for a
    resource, and nothing here says this API is that resource."""
    api = serve(better_auth_url=fake.url, jwt_issuer=fake.url, jwt_audience=fake.url)
    token = access_token(key, access_claims(fake.url, iss=fake.url, aud=fake.url))
    assert "BETTER_AUTH_MCP_RESOURCE" in refused(api.get("/api/tasks", headers=bearer(token)))


# Each given Better Auth's URL: claims that make an access token no good here.
BAD_ACCESS_TOKENS: dict[str, Callable[[str], dict[str, Any]]] = {
    "another resource": lambda _: {"aud": ["https://other.example/mcp"]},
    "no audience": lambda _: {"aud": None},
    "the jwt() plugin's issuer": lambda url: {"iss": url},
    "another issuer": lambda _: {"iss": "https://evil.example/api/auth"},
    "expired": lambda _: {"exp": dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)},
    "no client": lambda _: {"client_id": None, "azp": None},
    "a client acting for itself": lambda _: {"sub": "claude-client"},
    "bound to a DPoP key": lambda _: {
        "cnf": {"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}
    },
}


@pytest.mark.parametrize("overrides", BAD_ACCESS_TOKENS.values(), ids=BAD_ACCESS_TOKENS)
def test_a_bad_access_token_is_401(
    api: TestClient,
    fake: FakeBetterAuth,
    key: SigningKey,
    overrides: Callable[[str], dict[str, Any]],
) -> None:
    token = access_token(key, access_claims(fake.url, **overrides(fake.url)))
    refused(api.get("/api/tasks", headers=bearer(token)))


def test_a_client_credentials_token_says_it_acts_for_no_user(
    api: TestClient, fake: FakeBetterAuth, key: SigningKey
) -> None:
    token = access_token(key, access_claims(fake.url, sub="claude-client"))
    assert "acts for no user" in refused(api.get("/api/tasks", headers=bearer(token)))


def test_an_id_token_is_not_an_access_token(
    api: TestClient, fake: FakeBetterAuth, key: SigningKey
) -> None:
    """An ID token the provider signs with the same keys, for the client, not for this API."""
    id_claims = access_claims(fake.url, aud="claude-client", client_id=None, azp=None, scope=None)
    refused(api.get("/api/tasks", headers=bearer(key.sign(id_claims, typ="JWT"))))
    refused(api.get("/api/tasks", headers=bearer(key.sign(id_claims))))


def test_jwt_plugin_tokens_still_work_beside_access_tokens(
    api: TestClient, fake: FakeBetterAuth, key: SigningKey
) -> None:
    token = key.sign(better_auth_claims(fake.url, "web-user"))
    assert api.get("/api/web-user/tasks", headers=bearer(token)).status_code == 200


def test_an_access_token_is_verified_once_while_its_key_stays_published(
    api: TestClient, fake: FakeBetterAuth, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    token = access_token(key, access_claims(fake.url))
    calls = counting_jwt_decode(monkeypatch)
    for _ in range(3):
        assert api.get("/api/tasks", headers=bearer(token)).status_code == 200
    assert calls == [token]
    assert fake.requests["jwks"] == 1


def test_access_tokens_while_better_auth_is_down_are_503(serve: Client) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    api = serve(better_auth_url=url, better_auth_mcp_resource=RESOURCE, jwks_refetch_cooldown=30)
    token = access_token(SigningKey("EdDSA"), access_claims(url))
    response = api.get("/api/tasks", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert 1 <= int(response.headers["Retry-After"]) <= 30


def test_jwt_issuer_names_the_issuer_of_access_tokens_too(
    fake: FakeBetterAuth, key: SigningKey, serve: Client
) -> None:
    """Better Auth's `jwt.issuer` option sets `iss` in both kinds of token."""
    api = serve(
        better_auth_url=fake.url,
        better_auth_mcp_resource=RESOURCE,
        jwt_issuer="https://auth.example",
    )
    token = access_token(key, access_claims(fake.url, iss="https://auth.example"))
    assert api.get("/api/tasks", headers=bearer(token)).status_code == 200
    refused(api.get("/api/tasks", headers=bearer(access_token(key, access_claims(fake.url)))))


def test_an_opaque_access_token_says_to_name_the_resource(api: TestClient) -> None:
    """What the plugin issues to a client that sends no `resource`."""
    detail = refused(api.get("/api/tasks", headers=bearer("pfmDJrAlgeGExWMtMdlLZsWPKYZKpOEt")))
    assert "resource=BETTER_AUTH_MCP_RESOURCE" in detail


def test_the_resource_setting_is_read_as_written() -> None:
    settings = Settings.from_env(
        {"BETTER_AUTH_URL": "https://app.example", "BETTER_AUTH_MCP_RESOURCE": RESOURCE + "/"}
    )
    assert settings.better_auth_mcp_resource == RESOURCE + "/"
    assert (
        Settings.from_env({"BETTER_AUTH_URL": "https://app.example"}).better_auth_mcp_resource
        is None
    )


@pytest.mark.parametrize(
    "value", ["/api/mcp", "todo.example/api/mcp", "https://t.example/#x", "http://[::1/mcp"]
)
def test_a_resource_that_is_no_absolute_url_is_refused(value: str) -> None:
    with pytest.raises(ConfigError, match="BETTER_AUTH_MCP_RESOURCE"):
        Settings.from_env(
            {"BETTER_AUTH_URL": "https://app.example", "BETTER_AUTH_MCP_RESOURCE": value}
        )


def test_the_resource_needs_better_auth_keys() -> None:
    with pytest.raises(ConfigError, match="BETTER_AUTH_MCP_RESOURCE needs BETTER_AUTH_URL"):
        Settings.from_env({"BETTER_AUTH_MCP_RESOURCE": RESOURCE, "BETTER_AUTH_SECRET": "x" * 40})
