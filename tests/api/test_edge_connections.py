"""Connection floods replayed against `todo-api serve`: sockets that send nothing, held from one
address or from many, reopened as fast as they are closed. Requests from other addresses must
go on being answered.
"""

from __future__ import annotations

import contextlib
import selectors
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import httpx2 as httpx
import pytest

from tests.api.test_edge import ALICE, Server, fresh
from tests.api.test_live_updates import server_env
from tests.network import serving

MAX_CONNECTIONS = 200
PER_ADDRESS = 20
HONEST_REQUESTS = 99


@pytest.fixture(scope="module")
def server(database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    tmp_path = tmp_path_factory.mktemp("connections")
    env = server_env(
        database_url,
        MAX_CONNECTIONS=str(MAX_CONNECTIONS),
        MAX_CONNECTIONS_PER_ADDRESS=str(PER_ADDRESS),
        # Longer than the flood lasts: only the bounds under test close its sockets.
        HEAD_TIMEOUT="60",
    )
    log = tmp_path / "serve.log"
    with log.open("w") as out, serving(env, tmp_path, out, subprocess.STDOUT) as (base, process):
        yield Server(base, process, log)


@contextlib.contextmanager
def silent_flood(
    server: Server, addresses: list[str], per_address: int
) -> Iterator[dict[str, int]]:
    """Hold `per_address` sockets that send nothing from each address, reopening each one the
    server closes, until the block ends. Yields its counts: opened, and closed by the server."""
    stop = threading.Event()
    counts = {"opened": 0, "closed": 0}
    held = selectors.DefaultSelector()

    def connect(address: str) -> None:
        with contextlib.suppress(OSError):
            sock = socket.create_connection(server.address, timeout=5, source_address=(address, 0))
            held.register(sock, selectors.EVENT_READ, address)
            counts["opened"] += 1

    def flood() -> None:
        for address in addresses:
            for _ in range(per_address):
                connect(address)
        while not stop.is_set():
            for key, _ in held.select(0.05):  # answered or closed by the server: open another
                held.unregister(key.fileobj)
                key.fileobj.close()  # type: ignore[union-attr]
                counts["closed"] += 1
                connect(key.data)

    thread = threading.Thread(target=flood, daemon=True)
    thread.start()
    time.sleep(1.5)
    try:
        yield counts
    finally:
        stop.set()
        thread.join()
        for key in list(held.get_map().values()):
            key.fileobj.close()  # type: ignore[union-attr]
        held.close()


def honest_statuses(server: Server) -> list[int]:
    """One request from each of `HONEST_REQUESTS` other addresses, a few at a time."""

    def ask(_: int) -> int:
        transport = httpx.HTTPTransport(local_address=fresh())
        with httpx.Client(transport=transport, timeout=10) as client:
            try:
                return client.get(f"{server.base}/tasks", headers=ALICE).status_code
            except httpx.TransportError:
                return 0

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(ask, range(HONEST_REQUESTS)))


def test_one_address_cannot_hold_every_connection(server: Server) -> None:
    attacker = fresh()
    with silent_flood(server, [attacker], per_address=1000) as counts:
        statuses = honest_statuses(server)
    assert counts["opened"] >= 1000
    assert statuses.count(200) == HONEST_REQUESTS, statuses


def test_silent_connections_are_closed_before_anyone_is_refused(server: Server) -> None:
    # Under the per-address bound each, and together past the process's bound.
    attackers = [fresh() for _ in range(2 * MAX_CONNECTIONS // PER_ADDRESS)]
    with silent_flood(server, attackers, per_address=PER_ADDRESS) as counts:
        statuses = honest_statuses(server)
    assert counts["opened"] >= 2 * MAX_CONNECTIONS
    assert statuses.count(200) == HONEST_REQUESTS, statuses
    assert counts["closed"] > 0


def test_past_the_per_address_bound_a_connection_that_asks_is_answered_503(
    server: Server,
) -> None:
    address = fresh()
    held = [
        socket.create_connection(server.address, timeout=5, source_address=(address, 0))
        for _ in range(PER_ADDRESS)
    ]
    try:
        for sock in held:  # each has asked: none is silent
            sock.sendall(b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
        time.sleep(0.3)
        with socket.create_connection(
            server.address, timeout=5, source_address=(address, 0)
        ) as extra:
            extra.settimeout(3)
            answer = extra.recv(65536)
    finally:
        for sock in held:
            sock.close()
    assert answer.startswith(b"HTTP/1.1 503 "), answer
