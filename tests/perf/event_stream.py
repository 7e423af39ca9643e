"""CPU per event of one event stream, in process: this tree's EventStream against another's.

    python -m tests.perf.event_stream [--against REF] [--candidate NAME=FILE] [--events N]
                                      [--rounds N]

Each stream is called as an ASGI app with a feed held in memory, a receiver that takes every
write at once, and the server's extensions (todo_api.web.server), so what is measured is the
stream's own work per write: formatting, the send bound, the disconnect race, the wait. The
baseline is todo_api/live/stream.py as committed at REF (HEAD by default: the work tree's change
weighed against what it replaces), loaded beside this tree's; `--candidate` adds modules that
define an EventStream with the same constructor. Rounds alternate between them, and each figure
is the least CPU time of its rounds (interference only ever adds time); the ratio is the
baseline's CPU per event over each one's: above 1 is cheaper than the baseline.

Scenarios, N events each:
  pages      a backlog read in pages of 100 changes (one write per page)
  wakes      one change at a time, each announced by a wake after the last was written
  heartbeats an idle stream's heartbeats, back to back
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import importlib.util
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import todo_api.live.stream as this_tree
from storage import Changes, Tombstone
from storage.cursors import feed_cursor
from todo_api.live.wakeups import Wakeups
from todo_api.web.server import ABORT_EXTENSION, OPEN_EXTENSION

ROOT = Path(__file__).resolve().parents[2]
STREAM = "todo_api/live/stream.py"
PAGE = 100
DELETED = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def at_revision(ref: str, directory: Path) -> Path:
    source = subprocess.run(
        ["git", "show", f"{ref}:{STREAM}"], cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    path = directory / f"stream_at_{ref.replace('/', '_').replace('~', '_')}.py"
    path.write_text(source)
    return path


def pages(first: int, count: int, size: int) -> list[Changes]:
    """`count` feed pages of `size` deleted tasks each, numbered on from `first`."""
    made = []
    seq = first
    for index in range(count):
        positions = [feed_cursor(seq + i + 1) for i in range(size)]
        changes: list[Any] = [Tombstone(id=seq + i + 1, deleted_at=DELETED) for i in range(size)]
        seq += size
        made.append(Changes(changes, positions[-1], index < count - 1, positions))
    return made


async def no_confirm(_tasks: list[Any]) -> None:
    return None


async def run_once(module: ModuleType, scenario: str, events: int) -> tuple[float, float]:
    """CPU seconds and wall seconds for `events` events of `scenario` on one stream."""
    hub = Wakeups(per_user=1, per_process=1)
    watch = hub.watch("alice")
    heartbeat = 3600.0
    if scenario == "pages":
        feed = pages(0, events // PAGE, PAGE)
    else:
        feed = pages(0, events, 1)
        for page in feed:
            object.__setattr__(page, "has_more", False)
    if scenario == "heartbeats":
        feed, heartbeat = [Changes([], feed_cursor(0), False, [])], 1e-6
    reads = iter(feed)
    written = 0

    async def read(_cursor: str | None) -> Changes:
        return next(reads)

    async def receive() -> dict[str, Any]:
        await asyncio.Event().wait()  # the client stays
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        nonlocal written
        body = message.get("body", b"")
        if scenario == "heartbeats":
            written += body == b": heartbeat\n\n"
        else:
            written += body.count(b"event: change")
        if written >= events:
            hub.end_all()
            await asyncio.sleep(0)  # the end is heard now, even by a stream that never waits
        elif scenario == "wakes" and body.startswith(b"event: change"):
            watch.wake(written + 1)  # the next change is committed

    stream = module.EventStream(
        watch=watch,
        read=read,
        confirm=no_confirm,
        cursor=None,
        position=0,
        lifetime=3600,
        heartbeat=heartbeat,
        send_timeout=5,
        reset=b"event: reset\ndata: {}\n\n",
        headers={"Content-Type": "text/event-stream; charset=utf-8"},
    )
    scope = {
        "type": "http",
        "method": "GET",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "extensions": {ABORT_EXTENSION: lambda: None, OPEN_EXTENSION: lambda: True},
    }
    gc.collect()
    cpu, wall = time.process_time(), time.perf_counter()
    await stream(scope, receive, send)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    if written < events:
        raise RuntimeError(f"{module.__name__} wrote {written} of {events} events")
    return cpu, wall


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--against", default="HEAD", help="the baseline's git revision")
    parser.add_argument("--candidate", action="append", default=[], metavar="NAME=FILE")
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as directory:
        modules = {
            f"baseline ({args.against})": load(
                "baseline_stream", at_revision(args.against, Path(directory))
            ),
            "this tree": this_tree,
        }
        for index, item in enumerate(args.candidate):
            name, _, path = item.partition("=")
            modules[name] = load(f"candidate_stream_{index}", Path(path))
        best: dict[tuple[str, str], tuple[float, float]] = {}
        scenarios = ("pages", "wakes", "heartbeats")
        for _ in range(args.rounds):
            for scenario in scenarios:
                for name, module in modules.items():
                    cpu, wall = asyncio.run(run_once(module, scenario, args.events))
                    old = best.get((scenario, name), (cpu, wall))
                    best[(scenario, name)] = (min(old[0], cpu), min(old[1], wall))
    baseline = next(iter(modules))
    per_event: Callable[[float], float] = lambda seconds: seconds / args.events * 1e6  # noqa: E731
    print(f"{args.events} events per run, least of {args.rounds} rounds, alternating")
    print(
        f"{'scenario':<11} {'stream':<24} {'CPU µs/event':>13} {'wall µs/event':>14} {'ratio':>6}"
    )
    for scenario in scenarios:
        for name in modules:
            cpu, wall = best[(scenario, name)]
            ratio = best[(scenario, baseline)][0] / cpu
            print(
                f"{scenario:<11} {name:<24} {per_event(cpu):>13.2f} {per_event(wall):>14.2f}"
                f" {ratio:>6.2f}"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
