"""Cheap abuse, replayed against the server `todo-api serve` starts: stalled and trickled
bodies, oversized and slow request heads, idle connections, a flood of connections, and a
flood of guessed credentials. None of it may hold what other users need.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
import select
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.conftest import SECRET, bearer, make_token
from tests.fake_better_auth import FakeBetterAuth
from tests.network import serving
from todo_api.settings import PoolSettings

ALICE = bearer(make_token("alice"))
ALICE_HEADER = (f"Authorization: {ALICE['Authorization']}",)
# Admission's places: one per pooled database connection, as deployed by default.
SLOTS = PoolSettings().size + PoolSettings().max_overflow
HEAD_TIMEOUT = 2
BODY_IDLE_TIMEOUT = 3
BODY_TIMEOUT = 6
KEEP_ALIVE_TIMEOUT = 1
MAX_CONNECTIONS = 400  # above the 300 concurrent guesses below
MAX_HEAD_BYTES = 16 * 1024
GUESSES_PER_ADDRESS = 20


_addresses = itertools.count()


def fresh() -> str:
    """Another loopback address (the whole of 127.0.0.0/8 is this machine)."""
    n = next(_addresses)
    return f"127.1.{n // 250}.{n % 250 + 1}"


@dataclass(frozen=True)
class Server:
    base: str
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def address(self) -> tuple[str, int]:
        url = urlsplit(self.base)
        return url.hostname or "127.0.0.1", url.port or 80

    def connect(self) -> socket.socket:
        """A connection from an address of its own: each limit per address starts afresh."""
        return socket.create_connection(self.address, timeout=10, source_address=(fresh(), 0))

    def ready(self) -> int:
        transport = httpx.HTTPTransport(local_address=fresh())
        with httpx.Client(transport=transport) as client:
            return client.get(f"{self.base}/health/ready").status_code

    def rss_kib(self) -> int:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(
            next(line for line in status.splitlines() if line.startswith("VmRSS")).split()[1]
        )


@pytest.fixture(scope="module")
def fake_better_auth() -> Iterator[FakeBetterAuth]:
    fake = FakeBetterAuth()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def server(
    database_url: str,
    app_client: TestClient,
    fake_better_auth: FakeBetterAuth,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Server]:
    """One `todo-api serve` on the suite's database, its timeouts shortened for the tests."""
    tmp_path = tmp_path_factory.mktemp("edge")
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "BETTER_AUTH_SECRET": SECRET,
        "BETTER_AUTH_URL": fake_better_auth.url,
        "BETTER_AUTH_SESSIONS": "true",
        "JWT_ISSUER": "http://localhost:3000",
        "JWT_AUDIENCE": "http://localhost:3000",
        "HEAD_TIMEOUT": str(HEAD_TIMEOUT),
        "BODY_IDLE_TIMEOUT": str(BODY_IDLE_TIMEOUT),
        "BODY_TIMEOUT": str(BODY_TIMEOUT),
        "KEEP_ALIVE_TIMEOUT": str(KEEP_ALIVE_TIMEOUT),
        "MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        # The guesses below come 300 at once from one address.
        "MAX_CONNECTIONS_PER_ADDRESS": str(MAX_CONNECTIONS),
        "RATE_LIMIT_PER_USER": "1000000",
        "RATE_LIMIT_PER_ADDRESS": str(GUESSES_PER_ADDRESS),
        "LOG_LEVEL": "DEBUG",
    }
    env.pop("REDIS_URL", None)
    log = tmp_path / "serve.log"
    with log.open("w") as out, serving(env, tmp_path, out, subprocess.STDOUT) as (base, process):
        yield Server(base, process, log)


def request_head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", *headers, "", ""]
    return "\r\n".join(lines).encode()


def answer_of(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends before it closes the connection or `seconds` pass."""
    sock.settimeout(seconds)
    received = b""
    with contextlib.suppress(TimeoutError, ConnectionError):
        while chunk := sock.recv(65536):
            received += chunk
    return received


def timed_get(server: Server) -> tuple[int, float]:
    started = time.monotonic()
    response = httpx.get(f"{server.base}/tasks", headers=ALICE, timeout=30)
    return response.status_code, time.monotonic() - started


@contextlib.contextmanager
def trickling(sockets: list[socket.socket], every: float = 0.5) -> Iterator[None]:
    """Send each socket one more byte of a chunked body every `every` seconds."""
    stop = threading.Event()

    def drip() -> None:
        while not stop.wait(every):
            for sock in sockets:
                with contextlib.suppress(OSError):
                    sock.sendall(b"1\r\n \r\n")

    thread = threading.Thread(target=drip, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


@contextlib.contextmanager
def bodies_begun(server: Server, framing: str) -> Iterator[list[socket.socket]]:
    """More connections than admission has places, each with a POST's head sent and no body."""
    sockets = [server.connect() for _ in range(SLOTS + 5)]
    try:
        for sock in sockets:
            sock.sendall(
                request_head("POST", "/api/tasks", "Content-Type: application/json", framing)
            )
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def assert_others_are_served_at_once(server: Server) -> None:
    status, seconds = timed_get(server)
    assert status == 200
    assert seconds < 1
    assert server.ready() == 200


def test_stalled_bodies_hold_no_place_other_users_need(server: Server) -> None:
    with bodies_begun(server, "Content-Length: 100"):
        time.sleep(0.5)
        assert_others_are_served_at_once(server)


def test_trickled_chunked_bodies_hold_no_place_other_users_need(server: Server) -> None:
    with bodies_begun(server, "Transfer-Encoding: chunked") as sockets, trickling(sockets):
        time.sleep(1)
        assert_others_are_served_at_once(server)


def test_a_body_that_stops_arriving_is_answered_408(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            request_head("PATCH", "/api/tasks/1", *ALICE_HEADER, "Content-Length: 100") + b'{"t'
        )
        started = time.monotonic()
        answer = answer_of(sock, BODY_IDLE_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert b"application/problem+json" in answer
    assert BODY_IDLE_TIMEOUT - 0.5 < time.monotonic() - started < BODY_IDLE_TIMEOUT + 2


def test_a_body_trickled_past_the_deadline_is_answered_408(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            request_head("POST", "/api/tasks", *ALICE_HEADER, "Transfer-Encoding: chunked")
        )
        started = time.monotonic()
        with trickling([sock]):
            answer = answer_of(sock, BODY_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 408 "), answer
    assert BODY_TIMEOUT - 0.5 < time.monotonic() - started < BODY_TIMEOUT + 2


def test_a_1_mib_request_head_is_refused(server: Server) -> None:
    with server.connect() as sock:
        head = request_head("GET", "/api/tasks", *ALICE_HEADER, f"X-Padding: {'a' * 2**20}")
        with contextlib.suppress(ConnectionError):
            sock.sendall(head)
        answer = answer_of(sock, 5)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b"application/problem+json" in answer


def test_a_refused_body_does_not_keep_its_connection(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(request_head("POST", "/api/tasks", *ALICE_HEADER, "Content-Length: 999999999"))
        started = time.monotonic()
        with trickling([sock], every=0.2):  # the body goes on arriving, a little at a time
            answer = answer_of(sock, KEEP_ALIVE_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 413 "), answer
    assert time.monotonic() - started < 2  # closed after the answer, not held open


def test_an_unread_body_does_not_keep_its_connection(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(request_head("GET", "/api/health", "Content-Length: 999999999"))
        started = time.monotonic()
        with trickling([sock], every=0.2):
            answer = answer_of(sock, KEEP_ALIVE_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 200 "), answer
    assert time.monotonic() - started < 2


def test_pipelined_heads_are_each_held_to_the_limit_not_together(server: Server) -> None:
    padding = f"X-Padding: {'p' * (MAX_HEAD_BYTES * 2 // 3)}"
    with server.connect() as sock:
        sock.sendall(request_head("GET", "/api/health", padding) * 2)
        answer = b""
        sock.settimeout(5)
        while answer.count(b"HTTP/1.1 ") < 2:
            answer += sock.recv(65536)
    assert answer.count(b"HTTP/1.1 200 ") == 2, answer


def test_a_head_just_under_the_limit_is_served(server: Server) -> None:
    padding = "a" * (MAX_HEAD_BYTES - 1024)
    response = httpx.get(f"{server.base}/tasks", headers={**ALICE, "X-Padding": padding})
    assert response.status_code == 200


def rss_growth_kib(server: Server, attack: Callable[[], object], connections: int) -> int:
    """How far the server's RSS rose above where it was while `connections` threads each ran
    `attack`."""
    before = server.rss_kib()
    peak = before
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, server.rss_kib())
            time.sleep(0.02)

    watcher = threading.Thread(target=watch)
    watcher.start()
    threads = [threading.Thread(target=attack) for _ in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    done.set()
    watcher.join()
    return peak - before


def test_eight_concurrent_10_mb_heads_barely_grow_memory(server: Server) -> None:
    def stream_head() -> None:
        with server.connect() as sock, contextlib.suppress(OSError):
            sock.sendall(b"GET /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\n")
            line = b"X-Filler: " + b"b" * 1000 + b"\r\n"
            for _ in range(10_000):  # 10 MB of header lines, never ending the head
                sock.sendall(line)

    grown = rss_growth_kib(server, stream_head, connections=8)
    assert grown < 50 * 1024, f"RSS grew by {grown} KiB"


def closed(sock: socket.socket) -> bool:
    """Whether the server has answered (408) or closed the connection, after one more byte."""
    try:
        sock.sendall(b"X")
    except OSError:
        return True
    readable, _, _ = select.select([sock], [], [], 0)
    return bool(readable)


def test_heads_sent_a_byte_at_a_time_are_cut_off(server: Server) -> None:
    slow = [server.connect() for _ in range(20)]
    started = time.monotonic()
    closed_after: dict[int, float] = {}
    try:
        for sock in slow:
            sock.sendall(b"GET /api/health HTTP/1.1\r\n")
        while len(closed_after) < len(slow) and time.monotonic() - started < HEAD_TIMEOUT + 5:
            time.sleep(0.3)
            for index, sock in enumerate(slow):
                if index not in closed_after and closed(sock):
                    closed_after[index] = time.monotonic() - started
    finally:
        for sock in slow:
            sock.close()
    assert len(closed_after) == len(slow)
    assert max(closed_after.values()) < HEAD_TIMEOUT + 1.5


def test_a_connection_that_never_asks_is_closed(server: Server) -> None:
    with server.connect() as sock:
        started = time.monotonic()
        assert answer_of(sock, HEAD_TIMEOUT + 3) == b""
        assert time.monotonic() - started < HEAD_TIMEOUT + 1


def test_an_idle_keep_alive_connection_is_closed(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(request_head("GET", "/api/health"))
        started = time.monotonic()
        answer = answer_of(sock, KEEP_ALIVE_TIMEOUT + 3)
        assert answer.startswith(b"HTTP/1.1 200 ")
        assert time.monotonic() - started < KEEP_ALIVE_TIMEOUT + 1


def test_connections_past_the_bound_are_answered_503_at_once(server: Server) -> None:
    time.sleep(KEEP_ALIVE_TIMEOUT + 0.5)  # the other tests' connections have closed
    held = [server.connect() for _ in range(MAX_CONNECTIONS)]
    for sock in held:
        # A whole head and no body: held until BODY_IDLE_TIMEOUT, longer than HEAD_TIMEOUT.
        sock.sendall(request_head("POST", "/api/tasks", "Content-Length: 100"))
    try:
        extra = [server.connect() for _ in range(5)]
        answers = [answer_of(sock, 1) for sock in extra]
        for sock in extra:
            sock.close()
        assert all(answer.startswith(b"HTTP/1.1 503 ") for answer in answers), answers
        assert all(b"retry-after: 1" in answer for answer in answers)
    finally:
        for sock in held:
            sock.close()
    time.sleep(0.2)
    assert timed_get(server)[0] == 200


def guess_concurrently(server: Server, tokens: list[str], source: str) -> list[int]:
    async def guess_all() -> list[int]:
        transport = httpx.AsyncHTTPTransport(local_address=source)
        limits = httpx.Limits(max_connections=len(tokens))
        async with httpx.AsyncClient(transport=transport, limits=limits, timeout=30) as client:
            responses = await asyncio.gather(
                *(client.get(f"{server.base}/tasks", headers=bearer(t)) for t in tokens)
            )
        return [response.status_code for response in responses]

    return asyncio.run(guess_all())


def test_concurrent_guessed_sessions_reach_better_auth_at_most_the_limit(
    server: Server, fake_better_auth: FakeBetterAuth
) -> None:
    # Better Auth takes 2 s an answer, so that every guess is in flight at once.
    fake_better_auth.session_answer = b"null"
    fake_better_auth.drip_seconds = 0.5
    asked = fake_better_auth.requests["get-session"]
    guesses = [uuid.uuid4().hex for _ in range(300)]
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            flood = pool.submit(guess_concurrently, server, guesses, fresh())
            deadline = time.monotonic() + 10
            while fake_better_auth.requests["get-session"] - asked < GUESSES_PER_ADDRESS // 2:
                assert time.monotonic() < deadline, "the guesses never reached Better Auth"
                time.sleep(0.05)
            # Session checks in flight hold no place that a signed-in user's request needs.
            assert_others_are_served_at_once(server)
            statuses = flood.result()
    finally:
        fake_better_auth.session_answer = None
        fake_better_auth.drip_seconds = 0
    assert fake_better_auth.requests["get-session"] - asked <= GUESSES_PER_ADDRESS
    assert statuses.count(401) <= GUESSES_PER_ADDRESS
    assert statuses.count(429) >= 300 - GUESSES_PER_ADDRESS
    assert set(statuses) == {401, 429}
    assert statuses.count(401) > 0


def test_concurrent_forged_tokens_are_refused_past_the_limit(server: Server) -> None:
    forged = [make_token(f"user-{i}").rsplit(".", 1)[0] + ".forged" for i in range(300)]
    statuses = guess_concurrently(server, forged, source=fresh())
    assert statuses.count(401) <= GUESSES_PER_ADDRESS
    assert statuses.count(429) >= 300 - GUESSES_PER_ADDRESS
    assert set(statuses) == {401, 429}
    # The limit is on guesses from that address, not on its users.
    assert httpx.get(f"{server.base}/tasks", headers=ALICE).status_code == 200


def test_no_credential_is_written_to_the_log(server: Server) -> None:
    token = make_token("log-reader")
    opaque = uuid.uuid4().hex
    answers = [
        httpx.get(f"{server.base}/tasks", headers=bearer(token)),
        httpx.get(f"{server.base}/tasks", params={"access_token": token}),
        httpx.get(f"{server.base}/tasks", params={"token": opaque}),
        httpx.post(
            f"{server.base}/tasks", json={"title": "x", "access_token": opaque}, headers=ALICE
        ),
        httpx.post(f"{server.base}/tasks", json={"title": token}, headers=bearer("not-" + opaque)),
    ]
    time.sleep(0.3)
    log = server.log.read_text()
    # Each request has its line there (by route template: no query string is logged at all),
    # without its credential.
    logged = {
        line["request_id"]: line["route"]
        for line in map(json.loads, log.splitlines())
        if line["event"] == "request"
    }
    for answer in answers:
        assert logged[answer.headers["X-Request-ID"]] == "/api/tasks"
    assert token not in log
    assert token.rsplit(".", 1)[-1] not in log  # not even the signature
    assert opaque not in log


def chunked_post(body: bytes, *headers: str) -> bytes:
    """A chunked POST /api/tasks whose body is `body` in one chunk and the last chunk, before
    the trailer section: what comes next is trailer lines, then an empty line."""
    head = request_head(
        "POST",
        "/api/tasks",
        "Content-Type: application/json",
        "Transfer-Encoding: chunked",
        *headers,
    )
    return head + b"%x\r\n%s\r\n0\r\n" % (len(body), body)


def test_trailer_fields_never_become_request_headers(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            chunked_post(b'{"title": "signed in by a trailer"}')
            + f"Authorization: {ALICE['Authorization']}\r\n".encode()
            + b"X-Request-ID: from-the-trailer\r\n\r\n"
        )
        answer = answer_of(sock, KEEP_ALIVE_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 401 "), answer
    assert b"from-the-trailer" not in answer


def test_a_chunked_body_with_a_small_trailer_is_served(server: Server) -> None:
    with server.connect() as sock:
        sock.sendall(
            chunked_post(b'{"title": "with a trailer"}', *ALICE_HEADER) + b"X-Checksum: 1\r\n\r\n"
        )
        answer = answer_of(sock, KEEP_ALIVE_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 201 "), answer


def test_endless_trailers_are_refused_at_the_head_limit_and_barely_grow_memory(
    server: Server,
) -> None:
    answers: list[bytes] = []

    def send_trailers() -> None:
        with server.connect() as sock:
            with contextlib.suppress(OSError):
                sock.sendall(chunked_post(b"{}"))
                line = b"X-Trailer: " + b"t" * 1000 + b"\r\n"
                for _ in range(50_000):  # 50 MB of trailer lines, never ending the section
                    sock.sendall(line)
            answers.append(answer_of(sock, BODY_IDLE_TIMEOUT + 2))

    grown = rss_growth_kib(server, send_trailers, connections=3)
    assert grown < 50 * 1024, f"RSS grew by {grown} KiB"
    assert len(answers) == 3
    assert all(a.startswith(b"HTTP/1.1 431 ") or a == b"" for a in answers), answers
    assert any(a.startswith(b"HTTP/1.1 431 ") for a in answers), answers


@pytest.mark.parametrize(
    ("coding", "status"),
    [("identity, chunked", 501), ("gzip, chunked", 501), ("chunked, chunked", 400)],
)
def test_a_transfer_coding_other_than_chunked_is_refused(
    server: Server, coding: str, status: int
) -> None:
    body = b'{"title": "framed twice"}'
    head = request_head(
        "POST",
        "/api/tasks",
        *ALICE_HEADER,
        "Content-Type: application/json",
        f"Transfer-Encoding: {coding}",
    )
    with server.connect() as sock:
        sock.sendall(head + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        answer = answer_of(sock, KEEP_ALIVE_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 %d " % status), answer
    assert b"application/problem+json" in answer


@pytest.mark.parametrize("version", ["0.9", "2.0"])
def test_http_versions_other_than_1_0_and_1_1_are_answered_505(
    server: Server, version: str
) -> None:
    with server.connect() as sock:
        sock.sendall(f"GET /api/health HTTP/{version}\r\nHost: 127.0.0.1\r\n\r\n".encode())
        answer = answer_of(sock, KEEP_ALIVE_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 505 "), answer
    assert b"application/problem+json" in answer


def address_client(server: Server) -> httpx.Client:
    """A client whose calls all come from one address of their own."""
    transport = httpx.HTTPTransport(local_address=fresh())
    return httpx.Client(base_url=server.base, transport=transport, timeout=10)


def test_a_valid_credential_is_not_counted_as_a_guess(server: Server) -> None:
    # Health checks and unknown routes never check the credential they carry.
    with address_client(server) as client:
        for _ in range(GUESSES_PER_ADDRESS + 5):
            assert client.get("/health", headers=ALICE).status_code == 200
            assert client.get("/no-such-route", headers=ALICE).status_code == 404
        statuses = [client.get("/tasks", headers=ALICE).status_code for _ in range(5)]
        bob = bearer(make_token("bob"))
        statuses += [client.get("/tasks", headers=bob).status_code for _ in range(5)]
    assert statuses == [200] * 10


def test_a_refused_credential_still_counts_as_a_guess(server: Server) -> None:
    with address_client(server) as client:
        forged = bearer(ALICE["Authorization"].removeprefix("Bearer ") + "x")
        statuses = [client.get("/tasks", headers=forged).status_code for _ in range(25)]
        after = client.get("/tasks", headers=ALICE).status_code
    assert statuses[:GUESSES_PER_ADDRESS] == [401] * GUESSES_PER_ADDRESS
    assert set(statuses[GUESSES_PER_ADDRESS:]) == {429}
    assert after == 429


def test_probes_are_never_rate_limited(server: Server) -> None:
    with address_client(server) as client:
        anonymous = [client.get("/tasks").status_code for _ in range(GUESSES_PER_ADDRESS + 5)]
        assert anonymous[-1] == 429  # the address is over its limit
        probes = [client.get(path).status_code for path in ("/health", "/health/ready") * 75]
    assert probes == [200] * 150


def test_pipelined_bodies_are_no_trailers(server: Server) -> None:
    # Whitespace is valid JSON: bodies of 20 and 30 KB, each over the head's limit.
    first, second = (b'{"title": "pipelined"}' + b" " * size for size in (20_000, 30_000))
    requests = b"".join(
        request_head(
            "POST",
            "/api/tasks",
            *ALICE_HEADER,
            "Content-Type: application/json",
            f"Content-Length: {len(body)}",
        )
        + body
        for body in (first, second)
    )
    with server.connect() as sock:
        sock.sendall(requests)
        answer = b""
        sock.settimeout(5)
        while answer.count(b"HTTP/1.1 ") < 2 and (received := sock.recv(65536)):
            answer += received
    assert answer.count(b"HTTP/1.1 201 ") == 2, answer[:300]


def test_a_body_in_many_small_chunks_is_no_trailer(server: Server) -> None:
    padding = f"X-Padding: {'p' * (MAX_HEAD_BYTES // 2)}"
    body = b'{"title": "in small chunks"}' + b" " * 10_000  # whitespace is valid JSON
    chunks = b"".join(b"1\r\n%s\r\n" % body[i : i + 1] for i in range(len(body)))
    with server.connect() as sock:
        sock.sendall(
            request_head(
                "POST",
                "/api/tasks",
                *ALICE_HEADER,
                padding,
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
            )
            + chunks
            + b"0\r\n\r\n"
        )
        answer = answer_of(sock, KEEP_ALIVE_TIMEOUT + 3)
    assert answer.startswith(b"HTTP/1.1 201 "), answer[:300]
