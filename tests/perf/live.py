"""The live-updates benchmark: `python -m tests.perf.live [--quick] [--postgres URL]`.

1. Delivery latency across processes: two `todo-api serve` processes (A and B) on one fresh
   PostgreSQL database; a stream held on B; writes made one after another on A. For each write,
   the time from its 201 on A to its event on B (p50, p99, max), with B hearing of writes by
   LISTEN/NOTIFY and, in the same run, by polling (as behind a transaction-mode pooler). For
   scale, the round trip of one GET on B, measured in the same run.
2. Reminders: two processes, a stream on B, tasks made on A whose reminders come due a tenth of
   a second apart: for each, the time from its `remind_at` to its `reminder` event on B, with
   B hearing of claims by LISTEN/NOTIFY and (polling) only of its own. `--reminders` runs this
   part alone.
3. Idle streams: one process, with N streams open and idle against none: the resident memory
   they add, and the throughput of ordinary requests (wrk, `get` and `create`) with them open as
   a ratio to the throughput without them, in alternating turns.

Prints a table and writes the results as JSON to tests/perf/results/.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2

from tests.databases import fresh_postgres
from tests.network import free_port
from tests.perf.bench import SECRET, Bench, ensure_postgres, find_wrk, server_env, users_file
from tests.perf.report import write_results
from tests.perf.seed import seed
from tests.perf.servers import DEFAULT_POSTGRES, started, wait_until_idle
from tests.perf.servers import rss as rss_of
from tests.sse import EventReader
from todo_api.auth.authenticator import Expected, mint_token


def _token(user: str) -> str:
    return mint_token(SECRET, user, dt.timedelta(hours=2), Expected())


def _percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)

    def at(share: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(share * len(ordered)))], 2)

    return {
        "p50": at(0.50),
        "p90": at(0.90),
        "p99": at(0.99),
        "max": round(ordered[-1], 2),
        "mean": round(statistics.fmean(ordered), 2),
        "count": len(ordered),
    }


def delivery(env: dict[str, str], work: Path, wakeups: str, writes: int) -> dict[str, Any]:
    """Milliseconds from each write's 201 on A to its event on a stream held by B."""
    env = env | {"STREAM_WAKEUPS": wakeups}
    servers = {
        name: ([sys.executable, "-m", "todo_api", "serve", "--port", str(port)], port, env)
        for name, port in (("a", free_port()), ("b", free_port()))
    }
    user = f"live-{wakeups}"
    headers = {"Authorization": f"Bearer {_token(user)}"}
    with started(servers, work, workers=1) as bases:
        a, b = (f"{bases[name]}/api" for name in ("a", "b"))
        with httpx2.Client(headers=headers) as client:
            # Warm both: connections, caches, the stream's first read.
            first = client.post(f"{a}/tasks", json={"title": "warm"}).json()["id"]
            round_trips = []
            for _ in range(200):
                sent = time.perf_counter()
                client.get(f"{b}/tasks/{first}").raise_for_status()
                round_trips.append(1000 * (time.perf_counter() - sent))
            with EventReader(f"{b}/tasks/events", headers) as stream:
                stream.next(10)  # the warm-up task
                answered: dict[int, float] = {}
                for i in range(writes):
                    created = client.post(f"{a}/tasks", json={"title": f"write {i}"})
                    answered[created.json()["id"]] = time.perf_counter()
                    created.raise_for_status()
                latencies = []
                for _ in range(writes):
                    event = stream.next(10)
                    task_id = json.loads(event.data)["task"]["id"]
                    latencies.append(1000 * (event.received - answered[task_id]))
    return {
        "wakeups": wakeups,
        "writes": writes,
        "latency_ms": _percentiles(latencies),
        "get_round_trip_ms": _percentiles(round_trips),
    }


def reminder_delivery(env: dict[str, str], work: Path, wakeups: str, count: int) -> dict[str, Any]:
    """Milliseconds from each task's `remind_at` to its reminder event on a stream held by B."""
    env = env | {"STREAM_WAKEUPS": wakeups}
    servers = {
        name: ([sys.executable, "-m", "todo_api", "serve", "--port", str(port)], port, env)
        for name, port in (("a", free_port()), ("b", free_port()))
    }
    headers = {"Authorization": f"Bearer {_token(f'reminders-{wakeups}')}"}
    # The event's receive time is a perf_counter reading; remind_at is wall-clock time.
    wall = time.time() - time.perf_counter()
    with started(servers, work, workers=1) as bases:
        a, b = (f"{bases[name]}/api" for name in ("a", "b"))
        with (
            httpx2.Client(headers=headers) as client,
            EventReader(f"{b}/tasks/events", headers) as stream,
        ):
            start = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=3)
            due: dict[int, float] = {}
            for i in range(count):
                moment = start + dt.timedelta(seconds=i / 10)
                body = {"title": f"r{i}", "due_date": moment.isoformat(), "remind_before": "PT0S"}
                created = client.post(f"{a}/tasks", json=body)
                created.raise_for_status()
                due[created.json()["id"]] = moment.timestamp()
            late = []
            while len(late) < count:
                event = stream.next(10)
                if event.event == "reminder":
                    task_id = json.loads(event.data)["id"]
                    late.append(1000 * (event.received + wall - due.pop(task_id)))
    return {"wakeups": wakeups, "reminders": count, "lateness_ms": _percentiles(late)}


@contextlib.contextmanager
def idle_streams(base: str, count: int, users: int) -> Iterator[list[socket.socket]]:
    """`count` streams held open and never read, across `users` users."""
    host, port = base.removeprefix("http://").split(":")
    tokens = [_token(f"idle-{n:03}") for n in range(users)]
    sockets = []
    try:
        for n in range(count):
            sock = socket.create_connection((host, int(port)))
            request = (
                f"GET /api/tasks/events HTTP/1.1\r\nHost: {host}\r\n"
                f"Authorization: Bearer {tokens[n % users]}\r\nAccept: text/event-stream\r\n\r\n"
            )
            sock.sendall(request.encode())
            sockets.append(sock)
        for sock in sockets:
            sock.settimeout(10)
            head = sock.recv(4096)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"a stream was refused: {head[:200]!r}")
        yield sockets
    finally:
        for sock in sockets:
            sock.close()


def streams_alongside(
    env: dict[str, str], work: Path, bench: Bench, users_file: Path, count: int, rounds: int
) -> dict[str, Any]:
    """Throughput of ordinary requests with `count` idle streams open against none."""
    env = env | {"MAX_CONNECTIONS": str(count + 500), "STREAM_HEARTBEAT": "15"}
    port = free_port()
    servers = {
        "ours": ([sys.executable, "-m", "todo_api", "serve", "--port", str(port)], port, env)
    }
    scenarios = ("get", "create")
    results: dict[str, Any] = {s: {"without": [], "with": []} for s in scenarios}
    with started(servers, work, workers=1) as bases:
        base = bases["ours"]
        bench.load(base, "mix", users_file, 100, 3)
        rss_without = sum(rss_of(base))
        with idle_streams(base, count, users=count // 10):
            time.sleep(1)
            rss_with = sum(rss_of(base))
        wait_until_idle(base)
        for turn in range(rounds):
            order = ("without", "with") if turn % 2 == 0 else ("with", "without")
            for state in order:
                with idle_streams(base, count if state == "with" else 0, users=max(count // 10, 1)):
                    # Opening (or, before, closing) a thousand streams is work of its own: each
                    # turn measures the streams held, not their coming and going.
                    wait_until_idle(base)
                    for scenario in scenarios:
                        results[scenario][state].append(
                            bench.load(base, scenario, users_file, 100, 8)
                        )
                wait_until_idle(base)
    return {
        "streams": count,
        "rss_kib": {"without": rss_without, "with": rss_with},
        "kib_per_stream": round((rss_with - rss_without) / count, 1),
        "throughput": results,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.live", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="100 writes, 200 streams, 2 turns")
    parser.add_argument("--postgres", default=os.environ.get("PERF_DATABASE_URL", DEFAULT_POSTGRES))
    parser.add_argument("--reminders", action="store_true", help="the reminders part alone")
    args = parser.parse_args(argv)
    writes, streams, rounds = (100, 200, 2) if args.quick else (1000, 1000, 4)
    wrk = find_wrk()
    ensure_postgres(args.postgres)
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
    }
    with fresh_postgres(args.postgres) as url, tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        env = server_env(url, redis=False) | {"LOG_LEVEL": "WARNING"}
        subprocess.run([sys.executable, "-m", "todo_api", "db", "upgrade"], env=env, check=True)
        reminders = 50 if args.quick else 200
        report["reminders"] = [
            reminder_delivery(env, work, mode, reminders) for mode in ("listen", "poll")
        ]
        if args.reminders:
            print(format_reminders(report))
            write_results(report, "reminders")
            return 0
        owners = seed(url, {f"bench-user-{n:02}": 200 for n in range(10)})
        users = users_file(work / "users.txt", owners)
        report["delivery"] = [delivery(env, work, mode, writes) for mode in ("listen", "poll")]
        report["idle"] = streams_alongside(env, work, Bench(wrk, work), users, streams, rounds)
    report["machine"]["load_after"] = os.getloadavg()
    print(format_report(report))
    write_results(report, "live")
    return 0


def format_reminders(report: dict[str, Any]) -> str:
    lines = ["Reminders, from remind_at to the reminder event on process B (ms):", ""]
    lines.append("| B hears of claims by | reminders | p50 | p90 | p99 | max |")
    lines.append("|---|---|---|---|---|---|")
    for run in report["reminders"]:
        late = run["lateness_ms"]
        lines.append(
            f"| {run['wakeups']} | {run['reminders']} | {late['p50']} | {late['p90']} | "
            f"{late['p99']} | {late['max']} |"
        )
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    lines = [format_reminders(report), ""]
    lines += ["Delivery, from a write's 201 on process A to its event on process B (ms):", ""]
    lines.append("| B hears by | writes | p50 | p90 | p99 | max | GET round trip on B, p50 |")
    lines.append("|---|---|---|---|---|---|---|")
    for run in report["delivery"]:
        latency = run["latency_ms"]
        lines.append(
            f"| {run['wakeups']} | {run['writes']} | {latency['p50']} | {latency['p90']} | "
            f"{latency['p99']} | {latency['max']} | {run['get_round_trip_ms']['p50']} |"
        )
    idle = report["idle"]
    lines += ["", f"{idle['streams']} idle streams on one process:", ""]
    rss = idle["rss_kib"]
    lines.append(
        f"- memory: {rss['without'] / 1024:.1f} MiB without, {rss['with'] / 1024:.1f} MiB with "
        f"({idle['kib_per_stream']} KiB a stream)"
    )
    for scenario, states in idle["throughput"].items():
        without = statistics.median(r["rps"] for r in states["without"])
        with_ = statistics.median(r["rps"] for r in states["with"])
        errors = sum(r["errors"] for state in states.values() for r in state)
        cpu_without = statistics.median(r["cpu_ms_per_request"] for r in states["without"])
        cpu_with = statistics.median(r["cpu_ms_per_request"] for r in states["with"])
        runs = ", ".join(
            f"{state} {'/'.join(str(round(r['rps'])) for r in states[state])}"
            for state in ("without", "with")
        )
        lines.append(
            f"- {scenario}: {with_:.0f} req/s with them against {without:.0f} without: "
            f"ratio {with_ / without:.2f}; server CPU per request {cpu_with:.2f} ms against "
            f"{cpu_without:.2f} ms, ratio {cpu_without / cpu_with:.2f}; {errors} errors "
            f"(each turn: {runs})"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
