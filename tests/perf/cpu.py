"""CPU per request, in process: the service's app and the floor's, called one request at a time.

    python -m tests.perf.cpu [--postgres URL] [--requests N] [--rounds N] [--only SCENARIO...]

wrk figures on a shared 2-core machine swing with everyone else's load. This measures what our
Python layers cost per request more steadily: both ASGI apps are called directly (no sockets,
no HTTP parsing, which uvicorn does alike for both), against the same seeded PostgreSQL
database, and the CPU time of this process (every thread) is divided by the requests. Rounds
alternate between the two apps, and each figure is the least of its rounds: interference only
ever adds time. Used to weigh one change at a time.

`mcp-add` and `mcp-list` are the MCP door's tool calls (`add_task`, `list_tasks`) at /api/mcp,
of our app alone (the floor has no MCP), each against the REST scenario that does the same
(`create`, `list`): when both are chosen, their rounds alternate too, and the table gives
mcp/REST.
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
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from mcp_types.version import LATEST_HANDSHAKE_VERSION

from tests.databases import fresh_postgres
from tests.perf.bench import SECRET, server_env
from tests.perf.seed import Owner, seed
from tests.perf.servers import DEFAULT_POSTGRES
from todo_api.auth.authenticator import Expected, mint_token

Message = dict[str, Any]
App = Callable[
    [dict[str, Any], Callable[[], Awaitable[Message]], Callable[[Message], Awaitable[None]]],
    Awaitable[None],
]
Header = tuple[bytes, bytes]

# Each MCP scenario and the REST scenario it is weighed against.
MCP_PAIRS = {"mcp-add": "create", "mcp-list": "list"}
# What a stateless Streamable HTTP client sends with a POST: the answer's types, and the
# protocol version an SDK client would have negotiated. Stateless, the server serves each
# request alone: no `initialize` first (server.py, the SDK's streamable_http_manager.py).
MCP_HEADERS: tuple[Header, ...] = (
    (b"accept", b"application/json, text/event-stream"),
    (b"mcp-protocol-version", LATEST_HANDSHAKE_VERSION.encode()),
)


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
        self,
        method: str,
        target: str,
        token: str,
        body: bytes = b"",
        headers: Sequence[Header] = (),
    ) -> tuple[int, bytes]:
        path, _, query = target.partition("?")
        sent_headers = [(b"host", b"127.0.0.1"), (b"authorization", f"Bearer {token}".encode())]
        sent_headers += headers
        if body:
            sent_headers += [
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
            "headers": sent_headers,
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
    if scenario == "mcp-add":
        arguments = {"title": "Benchmark task", "priority": "high", "tags": ["bench"]}
        return _tool_calls("add_task", arguments, n)
    if scenario == "mcp-list":
        return _tool_calls("list_tasks", {"limit": 50}, n)
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


def _tool_calls(tool: str, arguments: dict[str, Any], n: int) -> list[tuple[str, str, bytes]]:
    """`n` JSON-RPC `tools/call` requests of `tool`, as the POSTs to /api/mcp that carry them."""
    return [
        (
            "POST",
            "/api/mcp",
            json.dumps(
                {
                    "jsonrpc": "2.0",
                    "id": i,
                    "method": "tools/call",
                    "params": {"name": tool, "arguments": arguments},
                }
            ).encode(),
        )
        for i in range(1, n + 1)
    ]


def _failure(scenario: str, status: int, answer: bytes) -> str | None:
    """Why an answer is not a success, if it is not: a 2xx, and for a tool call a JSON-RPC
    result that is no tool error (which MCP answers with 200)."""
    if not 200 <= status < 300:
        return f"{status} {answer[:200]!r}"
    if scenario in MCP_PAIRS:
        result = json.loads(answer).get("result")
        if (
            not isinstance(result, dict)
            or result.get("isError")
            or "structuredContent" not in result
        ):
            return f"not a tool's result: {answer[:300]!r}"
    return None


def _groups(scenarios: list[str]) -> list[list[str]]:
    """The scenarios whose rounds alternate: each alone, but an MCP scenario with its REST
    scenario when both are chosen (where that one stands in the order)."""
    groups: list[list[str]] = []
    for scenario in scenarios:
        pair = MCP_PAIRS.get(scenario)
        group = next((g for g in groups if pair in g), None) if pair else None
        if group is not None:
            group.append(scenario)
        else:
            groups.append([scenario])
    return groups


async def _measure(
    clients: dict[str, Client], owner: Owner, scenarios: list[str], n: int, rounds: int
) -> dict[str, dict[str, float]]:
    token = mint_token(SECRET, owner.user_id, dt.timedelta(hours=1), Expected())
    best: dict[str, dict[str, float]] = {s: {} for s in scenarios}
    for group in _groups(scenarios):
        for round_ in range(rounds):
            for scenario in group:
                headers = MCP_HEADERS if scenario in MCP_PAIRS else ()
                for name, client in clients.items():
                    if scenario in MCP_PAIRS and name != "ours":
                        continue
                    requests = _requests(owner, scenario, n, f"{name} {round_}")
                    for method, target, body in requests[:10]:  # warm caches
                        await client.request(method, target, token, body, headers)
                    answers = []
                    started = time.process_time()
                    for method, target, body in requests:
                        answers.append(await client.request(method, target, token, body, headers))
                    cpu_ms = 1000 * (time.process_time() - started) / n
                    # Checked once the clock has stopped: reading an answer is the client's work.
                    for (method, target, _), (status, answer) in zip(
                        requests, answers, strict=True
                    ):
                        failure = _failure(scenario, status, answer)
                        if failure is not None:
                            raise RuntimeError(f"{name} {scenario} {method} {target}: {failure}")
                    best[scenario][name] = min(best[scenario].get(name, float("inf")), cpu_ms)
    return best


def seeded_database(url: str) -> tuple[dict[str, str], Owner]:
    """The servers' environment for `url`, migrated, and the one user seeded there."""
    env = server_env(url, redis=False)
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
        if "floor" in result:
            floor_ms = f"{result['floor']:>8.2f} {result['floor'] / result['ours']:>10.2f}"
        else:
            floor_ms = f"{'-':>8} {'-':>10}"
        print(f"{scenario:<8} {result['ours']:>8.2f} {floor_ms}")
    for scenario, rest in MCP_PAIRS.items():
        if scenario in best and rest in best:
            ratio = best[scenario]["ours"] / best[rest]["ours"]
            print(f"{scenario}/{rest} (ours, mcp/REST): {ratio:.2f}")
    print("CPU-JSON " + json.dumps(best))
    return 0


if __name__ == "__main__":
    sys.exit(main())
