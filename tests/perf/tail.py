"""Where a served process's time goes, and its pauses: `python -m tests.perf.tail`.

    python -m tests.perf.tail [--only get create list] [--seconds N] [--tree DIR]

Starts `todo-api serve` (one worker, deployed settings) on a fresh seeded PostgreSQL database,
drives each scenario at 10 connections with wrk, and meanwhile
- samples the worker with py-spy (`pip install py-spy`; it reads the process from outside)
  while it holds the GIL: each sample goes to the innermost frame of a known group (uvicorn's
  HTTP, the thread-pool hop, logging, SQLAlchemy, ...), and the table gives each group's share
  of the process's CPU, and the event loop's thread against the handlers' threads;
- records every garbage collection's pause (tests/perf/gc_probe/sitecustomize.py, loaded
  through PYTHONPATH), by generation.
With `--tree`, the server is that checkout's (a `git worktree` of an earlier commit, say).
Shares and pauses need no quiet machine to mean something; latency does (tests.perf.run).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tests.databases import fresh_postgres
from tests.network import free_port
from tests.perf.bench import SCRIPT, Bench, ensure_postgres, find_wrk, server_env, users_file
from tests.perf.seed import seed
from tests.perf.servers import DEFAULT_POSTGRES, ROOT, started, workers

HERE = Path(__file__).resolve().parent
# Innermost match wins; a sample matching none is counted as "other".
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("logging (the access line)", ("logging/", "todo_api/logs.py")),
    ("SQLAlchemy and psycopg2", ("sqlalchemy/", "psycopg2")),
    ("storage/", ("storage/",)),
    ("JWT and auth", ("jwt/", "todo_api/auth/", "cryptography")),
    ("uvicorn's HTTP", ("uvicorn/protocols", "httptools", "uvicorn/middleware")),
    ("thread-pool hop", ("anyio/", "concurrent/futures", "threading.py", "queue.py")),
    ("rate limits", ("todo_api/web/ratelimit.py",)),
    (
        "metrics and request id",
        ("todo_api/web/observe.py", "prometheus_client", "todo_api/metrics"),
    ),
    (
        "request checks and dispatch",
        ("todo_api/web/request_checks.py", "todo_api/web/dispatch.py", "todo_api/web/validators"),
    ),
    ("handlers and use cases", ("handlers/", "todo_api/usecases", "todo_api/web/representation")),
    ("Connexion (routing, security, context)", ("connexion/",)),
    ("Starlette (routing, CORS, responses)", ("starlette/",)),
    ("other middleware of ours", ("todo_api/",)),
    ("asyncio's loop", ("asyncio/",)),
)


def shares(raw: str) -> tuple[dict[str, float], dict[str, float]]:
    """py-spy's raw (collapsed) samples as shares by group and by thread, in per cent."""
    groups: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        frames = stack.split(";")
        threads["event loop" if "MainThread" in frames[0] else "handler threads"] += int(count)
        label = next(
            (
                name
                for frame in reversed(frames[1:])
                for name, marks in GROUPS
                if any(mark in frame for mark in marks)
            ),
            "other",
        )
        groups[label] += int(count)
    total = sum(groups.values()) or 1
    return (
        {name: round(100 * n / total, 1) for name, n in groups.most_common()},
        {name: round(100 * n / total, 1) for name, n in threads.most_common()},
    )


def pauses(files: list[Path]) -> dict[int, dict[str, float]]:
    """Pauses by generation: how many, the median and the longest (ms)."""
    by_generation: dict[int, list[float]] = collections.defaultdict(list)
    for file in files:
        for generation, seconds in json.loads(file.read_text()):
            by_generation[generation].append(1000 * seconds)
    return {
        generation: {
            "count": len(values),
            "median_ms": round(statistics.median(values), 2),
            "max_ms": round(max(values), 2),
        }
        for generation, values in sorted(by_generation.items())
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.tail", description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("PERF_DATABASE_URL", DEFAULT_POSTGRES))
    parser.add_argument("--only", nargs="*", default=["get", "create", "list"])
    parser.add_argument("--seconds", type=int, default=15)
    parser.add_argument("--tree", default=str(ROOT), help="the checkout to serve")
    args = parser.parse_args(argv)
    spy = shutil.which("py-spy")
    if spy is None:
        sys.exit("This needs py-spy: `pip install py-spy`.")
    wrk = find_wrk()
    ensure_postgres(args.postgres)
    with fresh_postgres(args.postgres) as url, tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        env = server_env(url, redis=False)
        upgrade = [sys.executable, "-m", "todo_api", "db", "upgrade"]
        subprocess.run(upgrade, env=env, check=True, capture_output=True)
        users = users_file(work / "users.txt", seed(url, {f"tail-{n}": 6_000 for n in range(10)}))
        env |= {"TODO_GC_PROBE": str(work / "gc"), "PYTHONPATH": f"{HERE / 'gc_probe'}:{args.tree}"}
        port = free_port()
        serve = ["env", "-C", args.tree, sys.executable, "-m", "todo_api", "serve"]
        report: dict[str, object] = {"tree": args.tree}
        with started({"ours": ([*serve, "--port", str(port)], port, env)}, work, 1) as bases:
            base = bases["ours"]
            Bench(wrk, work).load(base, "mix", users, 100, 3)
            pid = workers(base)[0]
            for scenario in args.only:
                load = [wrk, "-t1", "-c10", f"-d{args.seconds + 4}s", "-s", str(SCRIPT), base]
                running = subprocess.Popen(
                    [*load, "--", scenario, str(users)], stdout=subprocess.DEVNULL
                )
                time.sleep(2)
                out = work / f"{scenario}.txt"
                record = [spy, "record", "--gil", "--threads", "--format", "raw", "-r", "250"]
                record += ["-d", str(args.seconds), "--pid", str(pid), "-o", str(out)]
                subprocess.run(record, check=True, capture_output=True)
                running.wait()
                by_group, by_thread = shares(out.read_text())
                report[scenario] = {"threads": by_thread, "groups": by_group}
                print(f"\n{scenario} at 10 connections, share of the worker's CPU (%)")
                for name, share in {**by_thread, **by_group}.items():
                    print(f"  {name:<42} {share:>5.1f}")
        report["gc_pauses"] = pauses(sorted(work.glob("gc.*")))
        print("\ngarbage collections while serving (from start-up to shutdown)")
        for generation, figures in report["gc_pauses"].items():  # type: ignore[union-attr]
            print(f"  generation {generation}: {figures}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
