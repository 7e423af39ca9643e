"""A stream ticket is spent by the request that opens a stream with it, and by no other: a
request refused for its cursor, its path, a bound or anything else leaves the ticket good,
once. Tickets live in the database (any process redeems them); the per-user bound on streams
is kept in the process, or in Redis when the processes share one."""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import redis
from sqlalchemy import Engine
from starlette.testclient import TestClient

from storage.tickets import Redeemed, TicketStore
from tests.conftest import AUDIENCE, ISSUER, SECRET, Client, bearer, make_token
from tests.redis_service import REDIS_URL, needs_redis
from todo_api.live.leases import leases_key
from todo_api.live.wakeups import Wakeups, Watch

ALICE = bearer(make_token("alice"))
EVENTS = "/api/tasks/events"


def started(serve: Client, database_url: str, **settings: Any) -> TestClient:
    """An app on the suite's database whose streams end at once (unless `settings` say
    otherwise), so that the test client gets each stream's whole answer."""
    settings.setdefault("stream_max_seconds", 0.2)
    return serve(
        database_url=database_url,
        auth_secret=SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        **settings,
    )


@pytest.fixture
def api(serve: Client, database_url: str, app_client: TestClient) -> TestClient:
    return started(serve, database_url)


def ticket(api: TestClient, path: str = "/api/tasks", headers: dict[str, str] = ALICE) -> str:
    answer = api.post(f"{path}/events/tickets", headers=headers)
    assert answer.status_code == 201, answer.text
    value: str = answer.json()["ticket"]
    return value


def opens(api: TestClient, value: str, path: str = EVENTS) -> bool:
    """Whether the ticket opens a stream; anything else must be the 401 of a spent ticket."""
    answer = api.get(f"{path}?ticket={value}")
    if answer.status_code == 200:
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.text.startswith("retry: ")
        return True
    assert answer.status_code == 401, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert "already used" in answer.json()["detail"]
    return False


@pytest.fixture
def on_watch(monkeypatch: pytest.MonkeyPatch) -> threading.Event:
    """Set once a stream has taken its place in the process (before any Redis lease)."""
    watched = threading.Event()
    watch = Wakeups.watch

    def watching(self: Wakeups, user_id: str) -> Watch:
        registered = watch(self, user_id)
        watched.set()
        return registered

    monkeypatch.setattr(Wakeups, "watch", watching)
    return watched


REFUSALS: dict[str, tuple[str, dict[str, str], int]] = {
    # The schema's pattern, checked after the credential
    "cursor the schema refuses": (f"{EVENTS}?cursor=not!a!cursor", {}, 422),
    # Well-formed, but no cursor of the feed's: refused as the stream opens
    "cursor the feed never issued": (f"{EVENTS}?cursor=eyJ4Ijo1fQ", {}, 422),
    "Last-Event-ID the feed never issued": (EVENTS, {"Last-Event-ID": "eyJ4Ijo1fQ"}, 422),
    "another user's path": ("/api/bob/tasks/events", {}, 403),
}


@pytest.mark.parametrize(("path", "headers", "status"), REFUSALS.values(), ids=REFUSALS)
def test_a_refused_request_leaves_the_ticket_good_once(
    api: TestClient, path: str, headers: dict[str, str], status: int
) -> None:
    value = ticket(api)
    separator = "&" if "?" in path else "?"
    refused = api.get(f"{path}{separator}ticket={value}", headers=headers)
    assert refused.status_code == status, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    assert opens(api, value)
    assert not opens(api, value)


def test_a_stream_refused_at_the_users_bound_leaves_the_ticket_good(
    serve: Client, database_url: str, app_client: TestClient, on_watch: threading.Event
) -> None:
    api = started(serve, database_url, streams_per_user=1, stream_max_seconds=1.0)
    value = ticket(api)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.get, EVENTS, headers=ALICE)  # open for a second
        assert on_watch.wait(5)
        refused = api.get(f"{EVENTS}?ticket={value}")
        assert refused.status_code == 429, refused.text
        assert first.result().status_code == 200
    assert opens(api, value)
    assert not opens(api, value)


def test_a_ticket_opens_one_stream_on_either_path_family(api: TestClient) -> None:
    for path in ("/api/tasks", "/api/alice/tasks"):
        value = ticket(api, path)
        assert opens(api, value, f"{path}/events")
        assert not opens(api, value, f"{path}/events")
        assert not opens(api, value, EVENTS)


@pytest.fixture
def user() -> str:
    return f"ticket-test-{uuid.uuid4().hex[:12]}"


@pytest.fixture
def redis_user(user: str) -> Iterator[str]:
    """A user of this test's own: in the shared Redis, the only lease key it makes, removed
    after."""
    yield user
    client = redis.Redis.from_url(REDIS_URL)
    client.delete(leases_key(user))
    client.close()


@pytest.mark.parametrize(
    "shared",
    [
        pytest.param(False, id="bound-in-process"),
        pytest.param(True, id="bound-in-redis", marks=needs_redis),
    ],
)
def test_of_two_requests_with_one_ticket_at_once_one_opens_a_stream_and_the_other_no_place(
    serve: Client,
    database_url: str,
    app_client: TestClient,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    user: str,
    shared: bool,
) -> None:
    if shared:
        request.getfixturevalue("redis_user")
    api = started(
        serve,
        database_url,
        streams_per_user=2,
        stream_max_seconds=1.0,
        redis_url=REDIS_URL if shared else None,
    )
    headers = bearer(make_token(user))
    # Both are past every check, each with its place, before either spends the ticket.
    both_checked = threading.Barrier(2, timeout=10)
    redeem = TicketStore.redeem

    def redeem_together(self: TicketStore, *args: Any, **kwargs: Any) -> Any:
        both_checked.wait()
        return redeem(self, *args, **kwargs)

    monkeypatch.setattr(TicketStore, "redeem", redeem_together)
    value = ticket(api, headers=headers)
    with ThreadPoolExecutor(2) as pool:
        opened = list(pool.map(lambda _: opens(api, value, f"/api/{user}/tasks/events"), range(2)))
    assert sorted(opened) == [False, True]
    monkeypatch.setattr(TicketStore, "redeem", redeem)
    # The refused one gave its place back: the user's two streams may be open at once.
    opened_first = threading.Event()
    watch = Wakeups.watch

    def watching(self: Wakeups, user_id: str) -> Watch:
        registered = watch(self, user_id)
        opened_first.set()
        return registered

    monkeypatch.setattr(Wakeups, "watch", watching)
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(api.get, EVENTS, headers=headers)  # open for a second
        assert opened_first.wait(5)
        assert api.get(EVENTS, headers=headers).status_code == 200
        assert first.result().status_code == 200


def test_the_store_checks_a_ticket_without_spending_it_and_redeems_it_once(
    engine: Engine,
) -> None:
    store = TicketStore(engine, dt.timedelta(seconds=60))
    issued = store.issue("alice", None)
    assert store.check(issued.value) == store.check(issued.value) == Redeemed("alice", None)
    assert store.redeem(issued.value, "bob") is None  # good for its own user only
    assert store.redeem(issued.value, "alice") == Redeemed("alice", None)
    assert store.redeem(issued.value, "alice") is None
    assert store.check(issued.value) is None


def test_of_many_redeeming_one_ticket_at_once_one_gets_it(engine: Engine) -> None:
    store = TicketStore(engine, dt.timedelta(seconds=60))
    issued = store.issue("alice", None)
    with ThreadPoolExecutor(8) as pool:
        redeemed = list(pool.map(lambda _: store.redeem(issued.value, "alice"), range(8)))
    assert [r for r in redeemed if r is not None] == [Redeemed("alice", None)]
