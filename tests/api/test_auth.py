"""Every way a bearer token can be wrong is a 401 problem with a Bearer challenge."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.testclient import TestClient

from tests.conftest import AUDIENCE, ISSUER, SECRET, bearer, make_token
from tests.fake_better_auth import b64url, forged_token

NOW = dt.datetime.now(dt.UTC)


def _unsigned(claims: dict) -> str:
    return forged_token({"alg": "none", "typ": "JWT"}, claims)


def _rsa_token() -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    claims = {"sub": "alice", "exp": NOW + dt.timedelta(minutes=5), "iss": ISSUER, "aud": AUDIENCE}
    return jwt.encode(claims, pem, algorithm="RS256")


def _claims(**overrides: object) -> dict:
    claims = {
        "sub": "alice",
        "exp": int((NOW + dt.timedelta(minutes=5)).timestamp()),
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    claims.update(overrides)
    return claims


BAD_AUTHORIZATION: dict[str, Callable[[], str]] = {
    "malformed": lambda: "Bearer not-a-jwt",
    "three-garbage-parts": lambda: "Bearer aaa.bbb.ccc",
    "empty-bearer": lambda: "Bearer ",
    "basic-scheme": lambda: "Basic YWxpY2U6c2VjcmV0",
    "bad-signature": lambda: (
        "Bearer "
        + jwt.encode(_claims(), "another-secret-that-is-also-long-enough", algorithm="HS256")
    ),
    "tampered-claims": lambda: (
        "Bearer "
        + (
            lambda t: (
                t.split(".")[0]
                + "."
                + b64url(json.dumps(_claims(sub="bob")).encode())
                + "."
                + t.split(".")[2]
            )
        )(make_token("alice"))
    ),
    "expired": lambda: "Bearer " + make_token(exp=NOW - dt.timedelta(minutes=5)),
    "alg-none": lambda: "Bearer " + _unsigned(_claims()),
    "wrong-algorithm-hs512": lambda: "Bearer " + jwt.encode(_claims(), SECRET, algorithm="HS512"),
    "wrong-algorithm-rs256": lambda: "Bearer " + _rsa_token(),
    "wrong-issuer": lambda: "Bearer " + make_token(iss="https://evil.example"),
    "missing-issuer": lambda: "Bearer " + make_token(iss=None),
    "wrong-audience": lambda: "Bearer " + make_token(aud="https://other.example"),
    "missing-audience": lambda: "Bearer " + make_token(aud=None),
    "no-subject": lambda: "Bearer " + make_token(sub=None),
    "empty-subject": lambda: "Bearer " + make_token(""),
    "numeric-subject": lambda: "Bearer " + jwt.encode(_claims(sub=42), SECRET, algorithm="HS256"),
    "overlong-subject": lambda: "Bearer " + make_token("u" * 256),
    "subject-with-nul": lambda: "Bearer " + make_token("ali\u0000ce"),
    "subject-with-newline": lambda: "Bearer " + make_token("alice\n"),
    "no-expiry": lambda: "Bearer " + make_token(exp=None),
    "not-yet-valid": lambda: "Bearer " + make_token(nbf=NOW + dt.timedelta(hours=1)),
    "non-json-header": lambda: "Bearer " + b64url(b"\xff\xfe") + "." + b64url(b"{}") + ".sig",
    "header-not-object": lambda: "Bearer " + b64url(b"[1]") + "." + b64url(b"{}") + ".sig",
}


@pytest.mark.parametrize("authorization", BAD_AUTHORIZATION.values(), ids=BAD_AUTHORIZATION)
@pytest.mark.parametrize("path", ["/api/tasks", "/api/alice/tasks", "/api/tasks/1"])
def test_bad_token_is_401_with_challenge(
    client: TestClient, authorization: Callable[[], str], path: str
) -> None:
    response = client.get(path, headers={"Authorization": authorization()})
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["WWW-Authenticate"].startswith('Bearer realm="todo-api"')
    problem = response.json()
    assert problem["status"] == 401
    assert problem["title"] == "Unauthorized"
    assert "Traceback" not in response.text


def test_missing_token_is_401_with_plain_challenge(client: TestClient) -> None:
    response = client.post("/api/tasks", json={"title": "x"})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="todo-api"'


def test_invalid_token_challenge_names_the_error(client: TestClient) -> None:
    response = client.get("/api/tasks", headers=bearer("x.y.z"))
    assert response.headers["WWW-Authenticate"] == 'Bearer realm="todo-api", error="invalid_token"'


def test_unauthenticated_request_is_401_before_validation(client: TestClient) -> None:
    response = client.get("/api/tasks?limit=0")
    assert response.status_code == 401


def test_token_within_clock_leeway_is_accepted(client: TestClient) -> None:
    token = make_token(exp=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=5))
    assert client.get("/api/tasks", headers=bearer(token)).status_code == 200


def test_longest_subject_is_accepted(client: TestClient) -> None:
    subject = "ü" * 255
    response = client.post("/api/tasks", json={"title": "x"}, headers=bearer(make_token(subject)))
    assert response.status_code == 201
    assert response.json()["user_id"] == subject


def test_valid_token_is_accepted(client: TestClient) -> None:
    response = client.get("/api/tasks", headers=bearer(make_token("alice")))
    assert response.status_code == 200


def test_of_two_refused_credentials_the_event_stream_answers_as_it_did(
    client: TestClient,
) -> None:
    # Connexion ranks the failures of the stream's two schemes by HTTP status, so a refused
    # token must reach it as a 401 problem, not as the rules' own error (which has no status).
    answer = client.get("/api/tasks/events?ticket=unknown", headers={"Authorization": "Bearer"})
    assert answer.status_code == 401
    assert answer.json()["detail"].startswith("Invalid ticket")
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="todo-api", error="invalid_token"'
