"""A verified token is remembered until PyJWT would refuse it, and only that very string."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import jwt
import pytest
from starlette.testclient import TestClient

from tests.conftest import SECRET, counting_jwt_decode, make_token
from todo_api.auth.authenticator import LEEWAY, Authenticator, Expected, Verified, mint_token
from todo_api.auth.cache import TtlCache
from todo_api.auth.errors import Unauthenticated


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime.now(dt.UTC).timestamp()

    def __call__(self) -> float:
        return self.now


def _authenticator(verified: TtlCache[Verified] | None = None) -> Authenticator:
    return Authenticator(secret=SECRET, verified=verified)


def _subject(authenticator: Authenticator, token: str) -> str:
    return asyncio.run(authenticator.verify(token)).subject


def test_a_token_is_verified_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_jwt_decode(monkeypatch)
    authenticator = _authenticator()
    token = mint_token(SECRET, "alice", dt.timedelta(minutes=5), Expected())
    assert [_subject(authenticator, token) for _ in range(3)] == ["alice"] * 3
    assert calls == [token]


def test_a_remembered_token_is_checked_again_once_expired(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = Clock()
    authenticator = _authenticator(TtlCache(100, max_lifetime=3600, clock=clock))
    token = mint_token(SECRET, "alice", dt.timedelta(minutes=1), Expected())
    expires = jwt.decode(token, options={"verify_signature": False})["exp"]
    calls = counting_jwt_decode(monkeypatch)
    assert _subject(authenticator, token) == "alice"
    # Still within PyJWT's leeway: remembered.
    clock.now = expires + LEEWAY.total_seconds() - 1
    assert _subject(authenticator, token) == "alice"
    assert calls == [token]
    # Past it, PyJWT decides again, with the real clock (which says the token is still good).
    clock.now = expires + LEEWAY.total_seconds()
    assert _subject(authenticator, token) == "alice"
    assert calls == [token, token]


def test_entries_last_at_most_the_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = counting_jwt_decode(monkeypatch)
    clock = Clock()
    authenticator = _authenticator(TtlCache(100, max_lifetime=60, clock=clock))
    token = mint_token(SECRET, "alice", dt.timedelta(hours=1), Expected())
    _subject(authenticator, token)
    clock.now += 59
    _subject(authenticator, token)
    assert len(calls) == 1
    clock.now += 1
    _subject(authenticator, token)
    assert len(calls) == 2


def test_an_expired_token_is_refused_after_it_was_remembered() -> None:
    authenticator = _authenticator(TtlCache(100, max_lifetime=3600))
    # Past its exp, but within PyJWT's leeway for about another second.
    expires = int(time.time()) - int(LEEWAY.total_seconds()) + 1
    token = jwt.encode({"sub": "alice", "exp": expires}, SECRET, algorithm="HS256")
    assert _subject(authenticator, token) == "alice"
    time.sleep(max(0.0, expires + LEEWAY.total_seconds() - time.time()) + 0.05)
    with pytest.raises(Unauthenticated, match="expired"):
        _subject(authenticator, token)


def test_another_signature_on_the_same_claims_is_not_remembered() -> None:
    authenticator = _authenticator()
    token = mint_token(SECRET, "alice", dt.timedelta(minutes=5), Expected())
    _subject(authenticator, token)
    head, payload, _signature = token.split(".")
    forged = f"{head}.{payload}.{'A' * 43}"
    with pytest.raises(Unauthenticated):
        _subject(authenticator, forged)


def test_the_least_recently_used_entry_goes_when_full() -> None:
    cache = TtlCache[str](2)
    cache.put("a", "a", 3600)
    cache.put("b", "b", 3600)
    assert cache.get("a") == "a"  # now b is the least recently used
    cache.put("c", "c", 3600)
    assert [cache.get(name) for name in ("a", "b", "c")] == ["a", None, "c"]


def test_the_service_remembers_a_verified_token(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = counting_jwt_decode(monkeypatch)
    headers = {"Authorization": f"Bearer {make_token('alice')}"}
    for _ in range(3):
        assert client.get("/api/tasks", headers=headers).status_code == 200
    assert len(calls) == 1


def test_a_token_with_a_huge_expiry_is_accepted_and_remembered(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # PyJWT accepts any whole-number exp in the future; no float may overflow on the way.
    token = jwt.encode({"sub": "alice", "exp": 10**400}, SECRET, algorithm="HS256")
    calls = counting_jwt_decode(monkeypatch)
    authenticator = _authenticator()
    assert [_subject(authenticator, token) for _ in range(2)] == ["alice", "alice"]
    assert calls == [token]
