"""CPU per request, in process: the service's app and the floor's, called one request at a time.

    python -m tests.perf.cpu [--postgres URL] [--requests N] [--rounds N]

wrk figures on a shared 2-core machine swing with everyone else's load. This measures what our
Python layers cost per request more steadily: both ASGI apps are called directly (no sockets,
no HTTP parsing, which uvicorn does alike for both), against the same seeded PostgreSQL
database, and the CPU time of this process (every thread) is divided by the requests. Rounds
alternate between the two apps, and each figure is the least of its rounds: interference only
ever adds time. Used to weigh one change at a time.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tests.databases import fresh_postgres
from tests.perf.run import DEFAULT_POSTGRES, SECRET, _server_env
from tests.perf.seed import Owner, seed
from todo_api.auth.authenticator import Expected, mint_token

Message = dict[str, Any]
App = Callable[
    [dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]


class Client:
    """Just enough of an ASGI server: lifespan, then one request at a time."""

    def __init__(self, app: App) -> None:
        self._app = app
        self._state: dict[str, Any] = {}
        self._startup: asyncio.Queue[Message] = asyncio.Queue()
        self._events: asyncio.Queue[Message] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self._state}
        await self._startup.put({"type": "lifespan.startup"})
        self._task = asyncio.create_task(self._app(scope, self._startup.get, self._events.put))
        message = await self._events.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"the app did not start: {message}")

    async def stop(self) -> None:
        await self._startup.put({"type": "lifespan.shutdown"})
        await self._events.get()
        if self._task is not None:
            await self._task

    async def request(
        self, method: str, target: str, token: str, body: bytes = b""
    ) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]
        if body:
            headers += [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": "http",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": headers,
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": dict(self._state),
        }
        sent = False
        status, chunks = 0, []

        async def receive() -> Message:
            nonlocal sent
            if sent:
                await asyncio.Event().wait()
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        await self._app(scope, receive, send)
        return status, b"".join(chunks)


def _requests(owner: Owner, scenario: str, n: int, run: str) -> list[tuple[str, str, bytes]]:
    """The requests of one timed run; `run` names it, so that each PATCH changes its task (one
    that repeats the stored title is a no-op the service answers without writing)."""
    span = owner.last_id - owner.first_id + 1
    if scenario == "list":
        return [("GET", "/api/tasks?limit=50", b"")] * n
    if scenario == "deep":
        return [("GET", f"/api/tasks?limit=50&cursor={owner.deep_cursor}", b"")] * n
    if scenario == "get":
        return [("GET", f"/api/tasks/{owner.first_id + i * 7919 % span}", b"") for i in range(n)]
    if scenario == "create":
        body = b'{"title": "Benchmark task", "priority": "high", "tags": ["bench"]}'
        return [("POST", "/api/tasks", body)] * n
    if scenario == "patch":
        return [
            (
                "PATCH",
                f"/api/tasks/{owner.first_id + i * 7919 % span}",
                json.dumps({"title": f"Renamed {run} {i}"}).encode(),
            )
            for i in range(n)
        ]
    raise ValueError(scenario)


async def _measure(
    clients: dict[str, Client], owner: Owner, scenarios: list[str], n: int, rounds: int
) -> dict[str, dict[str, float]]:
    token = mint_token(SECRET, owner.user_id, dt.timedelta(hours=1), Expected())
    best: dict[str, dict[str, float]] = {s: {} for s in scenarios}
    for scenario in scenarios:
        for round_ in range(rounds):
            for name, client in clients.items():
                requests = _requests(owner, scenario, n, f"{name} {round_}")
                for method, target, body in requests[:10]:  # warm caches
                    await client.request(method, target, token, body)
                started = time.process_time()
                for method, target, body in requests:
                    status, answer = await client.request(method, target, token, body)
                    if not 200 <= status < 300:
                        raise RuntimeError(f"{name} {method} {target}: {status} {answer[:200]!r}")
                cpu_ms = 1000 * (time.process_time() - started) / n
                best[scenario][name] = min(best[scenario].get(name, float("inf")), cpu_ms)
    return best


def seeded_database(url: str) -> tuple[dict[str, str], Owner]:
    """The servers' environment for `url`, migrated, and the one user seeded there."""
    env = _server_env(url, redis=False)
    subprocess.run(
        [sys.executable, "-m", "todo_api", "db", "upgrade"],
        env=env,
        check=True,
        capture_output=True,
    )
    return env, seed(url, {"cpu-user": 6_000})[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.cpu", description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("PERF_DATABASE_URL", DEFAULT_POSTGRES))
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--only", nargs="*", default=["list", "deep", "get", "create", "patch"])
    args = parser.parse_args(argv)
    with fresh_postgres(args.postgres) as url:
        env, owner = seeded_database(url)
        os.environ.update(env)
        import logging

        # The servers log each request through uvicorn's access log, which is not called here.
        logging.disable(logging.CRITICAL)
        from tests.perf import floor
        from todo_api.app import create_app
        from todo_api.settings import Settings

        clients = {"ours": Client(create_app(Settings.from_env())), "floor": Client(floor.app)}

        async def run() -> dict[str, dict[str, float]]:
            for client in clients.values():
                await client.start()
            try:
                return await _measure(clients, owner, args.only, args.requests, args.rounds)
            finally:
                for client in clients.values():
                    await client.stop()

        best = asyncio.run(run())
    print(f"{'scenario':<8} {'ours ms':>8} {'floor ms':>8} {'floor/ours':>10}")
    for scenario, result in best.items():
        print(
            f"{scenario:<8} {result['ours']:>8.2f} {result['floor']:>8.2f} "
            f"{result['floor'] / result['ours']:>10.2f}"
        )
    print("CPU-JSON " + json.dumps(best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
