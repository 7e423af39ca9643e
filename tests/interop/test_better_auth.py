"""Better Auth's own credentials: JWKS-signed JWTs of every algorithm, and session tokens."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from types import SimpleNamespace
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from starlette.testclient import TestClient

import todo_api.auth.jwks
import todo_api.auth.sessions
from tests.conftest import SECRET, Client, bearer, counting_jwt_decode, make_token
from tests.fake_better_auth import (
    ALGORITHMS,
    FakeBetterAuth,
    SigningKey,
    b64url,
    better_auth_claims,
    forged_token,
)
from tests.network import free_port
from todo_api.app import create_app
from todo_api.settings import ConfigError, Settings


@pytest.fixture
def fake() -> Iterator[FakeBetterAuth]:
    server = FakeBetterAuth()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keys() -> dict[str, SigningKey]:
    return {algorithm: SigningKey(algorithm) for algorithm in ALGORITHMS}


@pytest.fixture
def api(fake: FakeBetterAuth, keys: dict[str, SigningKey], serve: Client) -> TestClient:
    """Every mode on: shared secret, JWKS and sessions, with every key published."""
    fake.published = [key.jwk() for key in keys.values()]
    return serve(auth_secret=SECRET, better_auth_url=fake.url, better_auth_sessions=True)


def claims(fake: FakeBetterAuth, subject: Any = "ba-user-1", **overrides: Any) -> dict:
    return better_auth_claims(fake.url, subject, **overrides)


def assert_401(response: Any) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("algorithm", ALGORITHMS)
def test_every_better_auth_algorithm_is_accepted(
    api: TestClient, fake: FakeBetterAuth, keys: dict[str, SigningKey], algorithm: str
) -> None:
    token = keys[algorithm].sign(claims(fake, "user-" + algorithm))
    created = api.post("/api/tasks", json={"title": "signed"}, headers=bearer(token))
    assert created.status_code == 201, created.text
    assert created.json()["user_id"] == "user-" + algorithm
    assert api.get(f"/api/user-{algorithm}/tasks", headers=bearer(token)).status_code == 200


def test_keys_are_fetched_once_and_cached(
    api: TestClient, fake: FakeBetterAuth, keys: dict[str, SigningKey]
) -> None:
    for key in keys.values():
        for _ in range(3):
            response = api.get("/api/tasks", headers=bearer(key.sign(claims(fake))))
            assert response.status_code == 200
    assert fake.requests["jwks"] == 1


def test_shared_secret_tokens_still_work_beside_jwks(api: TestClient) -> None:
    assert api.get("/api/tasks", headers=bearer(make_token(iss=None, aud=None))).status_code == 200


def test_rotation_is_picked_up_without_a_restart(fake: FakeBetterAuth, serve: Client) -> None:
    old, new = SigningKey("EdDSA"), SigningKey("EdDSA")
    fake.published = [old.jwk()]
    api = serve(better_auth_url=fake.url, jwks_refetch_cooldown=0.2)
    assert api.get("/api/tasks", headers=bearer(old.sign(claims(fake)))).status_code == 200
    fake.published = [new.jwk(), old.jwk()]
    time.sleep(0.3)
    assert api.get("/api/tasks", headers=bearer(new.sign(claims(fake)))).status_code == 200
    assert api.get("/api/tasks", headers=bearer(old.sign(claims(fake)))).status_code == 200
    assert fake.requests["jwks"] == 2


def test_unknown_kids_refetch_at_most_once_per_cool_down(
    fake: FakeBetterAuth, serve: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The cache's own clock, stepped by hand: a burst that outlasts a short real cool-down
    # on a slow machine would earn a second refetch honestly.
    now = [time.monotonic()]
    monkeypatch.setattr(todo_api.auth.jwks, "time", SimpleNamespace(monotonic=lambda: now[0]))
    known = SigningKey("EdDSA")
    fake.published = [known.jwk()]
    api = serve(better_auth_url=fake.url, jwks_refetch_cooldown=60.0)
    assert api.get("/api/tasks", headers=bearer(known.sign(claims(fake)))).status_code == 200
    assert fake.requests["jwks"] == 1

    def stranger(_: int) -> int:
        token = SigningKey("EdDSA", kid=uuid.uuid4().hex).sign(claims(fake))
        return api.get("/api/tasks", headers=bearer(token)).status_code

    assert stranger(0) == 401  # within the cool-down: no refetch at all
    assert fake.requests["jwks"] == 1
    now[0] += 61.0  # past the cool-down: the next unknown kids may refetch, once
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(pool.map(stranger, range(30)))
    assert statuses == [401] * 30
    assert fake.requests["jwks"] == 2


def test_a_withdrawn_key_stops_working_once_keys_are_checked_again(
    fake: FakeBetterAuth, serve: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey("ES256")
    fake.published = [key.jwk()]
    api = serve(better_auth_url=fake.url, jwks_refetch_cooldown=0.0)
    token = key.sign(claims(fake))
    assert api.get("/api/tasks", headers=bearer(token)).status_code == 200
    fake.published = []
    monkeypatch.setattr(todo_api.auth.jwks, "MAX_AGE_SECONDS", 0.0)
    assert_401(api.get("/api/tasks", headers=bearer(token)))


@pytest.mark.parametrize("algorithm", ["EdDSA", "RS256"])
def test_a_jwks_token_is_verified_once_while_its_key_stays_published(
    fake: FakeBetterAuth, serve: Client, monkeypatch: pytest.MonkeyPatch, algorithm: str
) -> None:
    key = SigningKey(algorithm)
    fake.published = [key.jwk()]
    api = serve(better_auth_url=fake.url)
    token = key.sign(claims(fake))
    calls = counting_jwt_decode(monkeypatch)
    for _ in range(3):
        assert api.get("/api/tasks", headers=bearer(token)).status_code == 200
    assert calls == [token]
    # Another signature on the same claims is a different string: checked, and refused.
    head, payload, _ = token.split(".")
    assert_401(api.get("/api/tasks", headers=bearer(f"{head}.{payload}.{'A' * 86}")))


def test_a_remembered_jwks_token_is_checked_again_once_its_keys_are_refetched(
    fake: FakeBetterAuth, serve: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey("EdDSA")
    fake.published = [key.jwk()]
    api = serve(better_auth_url=fake.url, jwks_refetch_cooldown=0.0)
    token = key.sign(claims(fake))
    assert api.get("/api/tasks", headers=bearer(token)).status_code == 200
    calls = counting_jwt_decode(monkeypatch)
    # The key set is due for a refresh: the memory is not enough, the key is fetched again
    # and the token checked against it.
    monkeypatch.setattr(todo_api.auth.jwks, "MAX_AGE_SECONDS", 0.0)
    assert api.get("/api/tasks", headers=bearer(token)).status_code == 200
    assert calls == [token]
    assert fake.requests["jwks"] == 2


def test_cached_keys_keep_working_while_better_auth_is_down(
    fake: FakeBetterAuth, serve: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = SigningKey("EdDSA")
    fake.published = [key.jwk()]
    api = serve(better_auth_url=fake.url, jwks_refetch_cooldown=0.0)
    assert api.get("/api/tasks", headers=bearer(key.sign(claims(fake)))).status_code == 200
    fake.stop()
    monkeypatch.setattr(todo_api.auth.jwks, "MAX_AGE_SECONDS", 0.0)  # forces a (failing) refetch
    assert api.get("/api/tasks", headers=bearer(key.sign(claims(fake)))).status_code == 200


def test_no_usable_key_while_better_auth_is_down_is_503(serve: Client) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    api = serve(better_auth_url=url, jwks_refetch_cooldown=30)
    token = SigningKey("EdDSA").sign(better_auth_claims(url))
    for _ in range(2):
        response = api.get("/api/tasks", headers=bearer(token))
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == "application/problem+json"
        assert 1 <= int(response.headers["Retry-After"]) <= 30
        assert "WWW-Authenticate" not in response.headers


def test_unknown_kid_while_better_auth_is_down_is_503_not_401(
    fake: FakeBetterAuth, serve: Client
) -> None:
    key = SigningKey("EdDSA")
    fake.published = [key.jwk()]
    api = serve(better_auth_url=fake.url, jwks_refetch_cooldown=0.0)
    assert api.get("/api/tasks", headers=bearer(key.sign(claims(fake)))).status_code == 200
    fake.stop()
    rotated = SigningKey("EdDSA")
    assert api.get("/api/tasks", headers=bearer(rotated.sign(claims(fake)))).status_code == 503


def _hs256(claims: dict[str, Any], secret: bytes, **headers: Any) -> str:
    """HS256 signed by hand: PyJWT (rightly) refuses to use a public key as an HMAC secret."""
    unsigned = forged_token({"alg": "HS256", "typ": "JWT", **headers}, claims)
    signature = hmac.new(secret, unsigned[:-1].encode(), hashlib.sha256).digest()
    return unsigned + b64url(signature)


def _confusion_secrets(key: SigningKey) -> dict[str, bytes]:
    pem = key.public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return {
        "public-key-pem": pem,
        "jwk-json": json.dumps(key.jwk()).encode(),
        "jwk-x": key.jwk().get("x", key.jwk().get("n", "")).encode(),
    }


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("secret_mode", [True, False], ids=["with-secret", "jwks-only"])
def test_key_confusion_is_refused(
    fake: FakeBetterAuth,
    keys: dict[str, SigningKey],
    serve: Client,
    algorithm: str,
    secret_mode: bool,
) -> None:
    fake.published = [key.jwk() for key in keys.values()]
    api = serve(better_auth_url=fake.url, auth_secret=SECRET if secret_mode else None)
    key = keys[algorithm]
    for secret in _confusion_secrets(key).values():
        token = _hs256(claims(fake), secret, kid=key.kid)
        assert_401(api.get("/api/tasks", headers=bearer(token)))


@pytest.mark.parametrize("header", ["jku", "x5u", "jwk"])
def test_key_location_headers_are_ignored(fake: FakeBetterAuth, serve: Client, header: str) -> None:
    attacker = FakeBetterAuth()
    try:
        forged = SigningKey("EdDSA")
        attacker.published = [forged.jwk()]
        fake.published = [SigningKey("EdDSA").jwk()]
        api = serve(better_auth_url=fake.url)
        value: Any = forged.jwk() if header == "jwk" else f"{attacker.url}/api/auth/jwks"
        token = forged.sign(claims(fake), **{header: value})
        assert_401(api.get("/api/tasks", headers=bearer(token)))
        assert attacker.requests["jwks"] == 0
    finally:
        attacker.stop()


def _unsigned(claims: dict[str, Any], **header: Any) -> str:
    return forged_token({"alg": "none", **header}, claims)


BAD_JWKS_TOKENS: dict[str, Callable[[FakeBetterAuth, dict[str, SigningKey]], str]] = {
    "alg-none-with-published-kid": lambda f, k: _unsigned(claims(f), kid=k["EdDSA"].kid),
    "expired": lambda f, k: k["EdDSA"].sign(claims(f, exp=int(time.time()) - 3600)),
    "wrong-issuer": lambda f, k: k["ES256"].sign(claims(f, iss="https://evil.example")),
    "wrong-audience": lambda f, k: k["ES256"].sign(claims(f, aud="https://evil.example")),
    "missing-subject": lambda f, k: k["RS256"].sign(claims(f, subject=None)),
    "numeric-subject": lambda f, k: k["RS256"].sign(claims(f, subject=12345)),
    "missing-expiry": lambda f, k: k["PS256"].sign(claims(f, exp=None)),
    "no-kid": lambda f, k: jwt_without_kid(k["EdDSA"], claims(f)),
    "kid-not-a-string": lambda f, k: forged_token(
        {"alg": "EdDSA", "kid": ["a"]}, claims(f), "c2ln"
    ),
    "signed-by-another-key-with-a-published-kid": lambda f, k: SigningKey(
        "EdDSA", kid=k["EdDSA"].kid
    ).sign(claims(f)),
    "alg-of-another-key-type": lambda f, k: SigningKey("ES256", kid=k["EdDSA"].kid).sign(claims(f)),
    "rs256-key-used-as-ps256": lambda f, k: relabelled(k["RS256"], "PS256", claims(f)),
    "garbage-signature": lambda f, k: k["EdDSA"].sign(claims(f))[:-8] + "AAAAAAAA",
}


def jwt_without_kid(key: SigningKey, claims: dict[str, Any]) -> str:

    return jwt.encode(claims, key.private, algorithm=key.algorithm)


def relabelled(key: SigningKey, algorithm: str, claims: dict[str, Any]) -> str:

    return jwt.encode(claims, key.private, algorithm=algorithm, headers={"kid": key.kid})


@pytest.mark.parametrize("make", BAD_JWKS_TOKENS.values(), ids=BAD_JWKS_TOKENS)
def test_bad_better_auth_token_is_401(
    api: TestClient,
    fake: FakeBetterAuth,
    keys: dict[str, SigningKey],
    make: Callable[[FakeBetterAuth, dict[str, SigningKey]], str],
) -> None:
    assert_401(api.get("/api/tasks", headers=bearer(make(fake, keys))))


def test_rsa_key_published_for_rs256_only_refuses_ps256(
    fake: FakeBetterAuth, keys: dict[str, SigningKey], serve: Client
) -> None:
    fake.published = [keys["RS256"].jwk()]
    api = serve(better_auth_url=fake.url)
    good = keys["RS256"].sign(claims(fake))
    assert api.get("/api/tasks", headers=bearer(good)).status_code == 200
    assert_401(
        api.get("/api/tasks", headers=bearer(relabelled(keys["RS256"], "PS256", claims(fake))))
    )


def test_issuer_and_audience_can_be_set(
    fake: FakeBetterAuth, keys: dict[str, SigningKey], serve: Client
) -> None:
    fake.published = [keys["EdDSA"].jwk()]
    api = serve(
        better_auth_url=fake.url, jwt_issuer="https://auth.example", jwt_audience="todo-api"
    )
    good = keys["EdDSA"].sign(claims(fake, iss="https://auth.example", aud="todo-api"))
    assert api.get("/api/tasks", headers=bearer(good)).status_code == 200
    assert_401(api.get("/api/tasks", headers=bearer(keys["EdDSA"].sign(claims(fake)))))


def test_jwks_url_overrides_the_default_location(
    fake: FakeBetterAuth, keys: dict[str, SigningKey], serve: Client
) -> None:
    fake.published = [keys["ES512"].jwk()]
    api = serve(better_auth_url="http://127.0.0.1:9", jwks_url=f"{fake.url}/api/auth/jwks")
    token = keys["ES512"].sign(better_auth_claims("http://127.0.0.1:9"))
    assert api.get("/api/tasks", headers=bearer(token)).status_code == 200


def test_asymmetric_tokens_are_refused_without_jwks(
    keys: dict[str, SigningKey], serve: Client
) -> None:
    api = serve(auth_secret=SECRET)
    token = keys["EdDSA"].sign(better_auth_claims("http://localhost:3000"))
    assert_401(api.get("/api/tasks", headers=bearer(token)))


# Sessions


def test_session_token_is_checked_with_better_auth_and_cached(
    api: TestClient, fake: FakeBetterAuth
) -> None:
    fake.sessions["qJKeuIy6LyJ9pMgfWMBqa1HmxOpjaLc4.P5WvMGzd+GVMAu7B7/gVuq="] = "ba-user-9"
    headers = bearer("qJKeuIy6LyJ9pMgfWMBqa1HmxOpjaLc4.P5WvMGzd+GVMAu7B7/gVuq=")
    created = api.post("/api/tasks", json={"title": "by session"}, headers=headers)
    assert created.status_code == 201
    assert created.json()["user_id"] == "ba-user-9"
    for _ in range(10):
        assert api.get("/api/ba-user-9/tasks", headers=headers).status_code == 200
    assert fake.requests["get-session"] == 1


def test_unknown_session_is_401_and_not_remembered_for_long(
    api: TestClient, fake: FakeBetterAuth, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(todo_api.auth.sessions, "FAILURE_TTL_SECONDS", 0.2)
    assert_401(api.get("/api/tasks", headers=bearer("not-yet-signed-in")))
    assert_401(api.get("/api/tasks", headers=bearer("not-yet-signed-in")))
    assert fake.requests["get-session"] == 1
    fake.sessions["not-yet-signed-in"] = "late-user"
    time.sleep(0.3)
    response = api.get("/api/tasks", headers=bearer("not-yet-signed-in"))
    assert response.status_code == 200


def test_session_answers_expire_after_the_ttl(fake: FakeBetterAuth, serve: Client) -> None:
    fake.sessions["s1"] = "u1"
    api = serve(better_auth_url=fake.url, better_auth_sessions=True, session_cache_ttl=0.2)
    assert api.get("/api/tasks", headers=bearer("s1")).status_code == 200
    del fake.sessions["s1"]  # signed out
    assert api.get("/api/tasks", headers=bearer("s1")).status_code == 200  # cached
    time.sleep(0.3)
    assert_401(api.get("/api/tasks", headers=bearer("s1")))


def test_sessions_are_off_by_default(fake: FakeBetterAuth, serve: Client) -> None:
    fake.sessions["s1"] = "u1"
    api = serve(better_auth_url=fake.url)
    response = api.get("/api/tasks", headers=bearer("s1"))
    assert_401(response)
    assert fake.requests["get-session"] == 0
    # A developer who sent a session token learns how to have it accepted.
    assert "BETTER_AUTH_SESSIONS=1" in response.json()["detail"]
    assert "bearer() plugin" in response.json()["detail"]


def test_a_refused_session_names_the_bearer_plugin_and_the_setting(api: TestClient) -> None:
    response = api.get("/api/tasks", headers=bearer("a-session-better-auth-does-not-know"))
    assert_401(response)
    assert "bearer() plugin" in response.json()["detail"]
    assert "BETTER_AUTH_SESSIONS" in response.json()["detail"]


def test_sessions_while_better_auth_is_down_are_503(serve: Client) -> None:
    api = serve(better_auth_url=f"http://127.0.0.1:{free_port()}", better_auth_sessions=True)
    response = api.get("/api/tasks", headers=bearer("some-session-token"))
    assert response.status_code == 503
    assert int(response.headers["Retry-After"]) >= 1


def test_session_of_another_user_gets_403_on_their_path(
    api: TestClient, fake: FakeBetterAuth
) -> None:
    fake.sessions["s-bob"] = "bob"
    assert api.get("/api/alice/tasks", headers=bearer("s-bob")).status_code == 403


# Configuration


def test_better_auth_settings_are_read() -> None:
    settings = Settings.from_env(
        {
            "BETTER_AUTH_URL": "https://app.example/",
            "BETTER_AUTH_SESSIONS": "1",
            "SESSION_CACHE_TTL": "10",
            "JWKS_REFETCH_COOLDOWN": "120",
            "AUTH_HTTP_TIMEOUT": "2",
        }
    )
    assert settings.better_auth_url == "https://app.example"
    assert settings.jwks_endpoint == "https://app.example/api/auth/jwks"
    assert settings.session_endpoint == "https://app.example/api/auth/get-session"
    assert settings.session_cache_ttl == 10
    assert settings.jwks_refetch_cooldown == 120
    assert settings.auth_http_timeout == 2
    override = Settings.from_env(
        {"BETTER_AUTH_URL": "https://app.example", "JWKS_URL": "https://keys.example/jwks"}
    )
    assert override.jwks_endpoint == "https://keys.example/jwks"
    assert override.session_endpoint is None


def test_sessions_need_a_better_auth_url() -> None:
    with pytest.raises(ConfigError, match="BETTER_AUTH_URL"):
        Settings.from_env({"BETTER_AUTH_SESSIONS": "true"})


def test_an_app_with_no_way_to_check_tokens_is_refused() -> None:
    with pytest.raises(ConfigError, match="BETTER_AUTH_SECRET"):
        create_app(Settings(database_url="sqlite://"))


ODD_HEADERS: list[dict[str, Any]] = [
    {"alg": ["EdDSA"], "kid": "k"},
    {"alg": {"EdDSA": 1}, "kid": "k"},
    {"alg": None},
    {"alg": 5},
    {"alg": "EdDSA", "kid": 5},
    {"alg": "EdDSA", "kid": "k" * 10_000},
    {"alg": "EdDSA", "kid": None},
    {"alg": "HS256", "kid": {"a": 1}},
    {"alg": "RS256", "kid": "k", "crit": ["exp"]},
    {"alg": "ES256", "kid": "k", "b64": False, "crit": ["b64"]},
    {},
]


@pytest.mark.parametrize("header", ODD_HEADERS, ids=[json.dumps(h)[:40] for h in ODD_HEADERS])
@pytest.mark.parametrize("payload", [{}, {"sub": []}, {"sub": "u", "exp": "soon"}, {"exp": 1e400}])
def test_no_token_shape_gives_a_500(
    api: TestClient, fake: FakeBetterAuth, header: dict[str, Any], payload: dict[str, Any]
) -> None:
    token = forged_token(header, payload, "c2lnbmF0dXJl")
    response = api.get("/api/tasks", headers=bearer(token))
    assert response.status_code == 401, response.text


@pytest.mark.parametrize(
    "payload",
    [
        {},
        {"sub": []},
        {"sub": {"id": 1}},
        {"sub": "u", "exp": "soon"},
        {"sub": "u", "exp": 1e400},
        {"sub": "u", "exp": 4102444800, "nbf": "later"},
        {"sub": "u", "exp": 4102444800, "iat": []},
        {"sub": "u", "exp": 4102444800, "aud": 5},
        {"sub": "u", "exp": 4102444800, "aud": ["another-app"]},
        {"sub": "", "exp": 4102444800},
        {"sub": "a\u0000b", "exp": 4102444800},
        {"sub": "\ud800", "exp": 4102444800},
    ],
)
def test_no_signed_payload_gives_a_500(
    api: TestClient, fake: FakeBetterAuth, keys: dict[str, SigningKey], payload: dict[str, Any]
) -> None:
    # Signed with a published key, so that the claims are really read.
    token = keys["EdDSA"].sign({"iss": fake.url, "aud": fake.url, **payload})
    response = api.get("/api/tasks", headers=bearer(token))
    assert response.status_code == 401, response.text


@pytest.mark.parametrize(
    "credential",
    [
        "a",
        "a.b",
        "a.b.c.d",
        "..",
        "x" * 8000,
        "x" * 9000,
        "é",
        "a b",
        "Zm9v.YmFy.YmF6",
        "eyJ.eyJ.eyJ",
    ],
)
def test_no_credential_shape_gives_a_500(api: TestClient, credential: str) -> None:
    response = api.get("/api/tasks", headers={"Authorization": f"Bearer {credential}".encode()})
    assert response.status_code == 401, response.text


GOOD = "__good__"  # stands for the published valid key in the lists below
BROKEN_KEY_SETS: dict[str, list[Any]] = {
    "rsa-without-modulus": [{"kty": "RSA", "kid": "broken"}, GOOD],
    "okp-without-x": [{"kty": "OKP", "crv": "Ed25519", "kid": "x"}, GOOD],
    "kty-a-list": [{"kty": ["EC"], "crv": "P-256", "kid": "k"}, GOOD],
    "crv-an-object": [{"kty": "EC", "crv": {"a": 1}, "kid": "k"}, GOOD],
    "alg-a-list": [{"kty": "OKP", "crv": "Ed25519", "alg": ["EdDSA"], "kid": "k", "x": "AA"}, GOOD],
    "kid-a-number": [{"kty": "OKP", "crv": "Ed25519", "kid": 5, "x": "AA"}, GOOD],
    "encryption-key": [{"kty": "RSA", "use": "enc", "kid": "e", "n": "AQAB", "e": "AQAB"}, GOOD],
    "symmetric-key": [{"kty": "oct", "k": "c2VjcmV0", "kid": "s"}, GOOD],
    "not-an-object": ["a string", 5, None, GOOD],
}


@pytest.mark.parametrize("published", BROKEN_KEY_SETS.values(), ids=BROKEN_KEY_SETS)
def test_unusable_published_keys_are_skipped(
    fake: FakeBetterAuth, serve: Client, published: list[Any]
) -> None:
    good = SigningKey("EdDSA")
    fake.published = [good.jwk() if key == GOOD else key for key in published]
    api = serve(better_auth_url=fake.url)
    assert api.get("/api/tasks", headers=bearer(good.sign(claims(fake)))).status_code == 200


def test_two_keys_may_share_a_kid(fake: FakeBetterAuth, serve: Client) -> None:
    ec, ed = SigningKey("ES256", kid="shared"), SigningKey("EdDSA", kid="shared")
    fake.published = [ec.jwk(), ed.jwk()]
    api = serve(better_auth_url=fake.url)
    for key in (ec, ed):
        assert api.get("/api/tasks", headers=bearer(key.sign(claims(fake)))).status_code == 200


UNREADABLE_ANSWERS = {
    "not-json": b"<html>oops</html>",
    "deeply-nested": b"[" * 100_000,
    "keys-not-a-list": b'{"keys": {"a": 1}}',
    "no-keys": b'{"jwks": []}',
    "a-list": b"[]",
    "over-a-megabyte": b'{"keys": [], "padding": "' + b"x" * 1_100_000 + b'"}',
}


@pytest.mark.parametrize("answer", UNREADABLE_ANSWERS.values(), ids=UNREADABLE_ANSWERS)
def test_unreadable_jwks_is_503(fake: FakeBetterAuth, serve: Client, answer: bytes) -> None:
    fake.jwks_answer = answer
    api = serve(better_auth_url=fake.url)
    token = SigningKey("EdDSA").sign(claims(fake))
    response = api.get("/api/tasks", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert "Retry-After" in response.headers


@pytest.mark.parametrize("answer", UNREADABLE_ANSWERS.values(), ids=UNREADABLE_ANSWERS)
def test_unreadable_session_answer_is_not_a_500(
    fake: FakeBetterAuth, serve: Client, answer: bytes
) -> None:
    fake.session_answer = answer
    api = serve(better_auth_url=fake.url, better_auth_sessions=True)
    response = api.get("/api/tasks", headers=bearer("some-session"))
    assert response.status_code in {401, 503}, response.text


@pytest.mark.parametrize("endpoint", ["jwks", "get-session"])
def test_a_server_that_drips_its_answer_is_cut_off(
    fake: FakeBetterAuth, serve: Client, endpoint: str
) -> None:
    fake.jwks_answer = fake.session_answer = b'{"keys": [], "user": null}'
    fake.drip_seconds = 0.5  # about 13 s for the whole answer
    api = serve(better_auth_url=fake.url, better_auth_sessions=True, auth_http_timeout=0.5)
    credential = SigningKey("EdDSA").sign(claims(fake)) if endpoint == "jwks" else "a-session"
    started = time.monotonic()
    response = api.get("/api/tasks", headers=bearer(credential))
    assert response.status_code == 503
    assert time.monotonic() - started < 5


def test_an_expired_session_is_refused(fake: FakeBetterAuth, serve: Client) -> None:
    fake.session_answer = json.dumps(
        {
            "session": {"userId": "u1", "expiresAt": "2020-01-01T00:00:00.000Z"},
            "user": {"id": "u1"},
        }
    ).encode()
    api = serve(better_auth_url=fake.url, better_auth_sessions=True)
    assert_401(api.get("/api/tasks", headers=bearer("old-session")))


def test_concurrent_requests_with_one_new_session_ask_once(
    fake: FakeBetterAuth, serve: Client
) -> None:
    fake.sessions["fresh"] = "u1"
    fake.drip_seconds = 0.001  # slow enough that the requests overlap
    fake.session_answer = json.dumps({"user": {"id": "u1"}, "session": {}}).encode()
    api = serve(better_auth_url=fake.url, better_auth_sessions=True)
    with ThreadPoolExecutor(max_workers=10) as pool:
        statuses = list(
            pool.map(
                lambda _: api.get("/api/tasks", headers=bearer("fresh")).status_code, range(20)
            )
        )
    assert statuses == [200] * 20
    assert fake.requests["get-session"] == 1


def test_jwks_url_alone_needs_an_issuer_and_audience() -> None:
    with pytest.raises(ConfigError, match="JWT_ISSUER"):
        Settings(jwks_url="https://keys.example/jwks")
    Settings(jwks_url="https://keys.example/jwks", jwt_issuer="i", jwt_audience="a")
