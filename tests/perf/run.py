"""The load benchmark: the service against a bare floor, side by side in one run.

    python -m tests.perf.run [--quick] [--postgres URL] [--redis] [--serve-with COMMAND]
                             [--only NAME...]

Ensures PostgreSQL is up, creates a fresh database, migrates it, seeds it with COPY, mints
tokens, starts the service (`todo-api serve`) and the floor (tests/perf/floor.py) as deployed,
drives both with wrk (tests/perf/load.lua), prints a table, writes the results as JSON to
tests/perf/results/ and cleans up. Absolute numbers on a shared machine are noise; ours/floor,
measured alternately in the same run, is the figure that matters.

A run that fails still prints and writes what it measured, with the failure in the JSON; a
server that vanished is named with its cause, and the servers' logs are kept beside the JSON
(tests/perf/results/<run>-logs/).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

from tests.databases import fresh_postgres
from tests.perf import scenarios as sections
from tests.perf.bench import Bench, ensure_postgres, find_wrk, server_env, users_file
from tests.perf.report import RESULTS, errors_in, format_report, run_stem, write_results
from tests.perf.scenarios import DOORS, GROWTH, REFERENCE_SCENARIOS, SCENARIOS, Mode
from tests.perf.seed import seed
from tests.perf.servers import (
    DEFAULT_POSTGRES,
    ROOT,
    ServerExited,
    exit_message,
    fake_model,
    keep_logs,
    measured,
)
from tests.perf.servers import rss as rss_of
from tests.perf.summary import summarize

FULL = Mode(
    50, 10_000, 5, 2, 10, 8, growth=True, workers=True, heavy_connections=500, heavy_duration=10
)
# Deep pages need 100 pages of 50 tasks: 6,000 tasks a user is the least that has them.
QUICK = Mode(
    10,
    6_000,
    1,
    0,
    2,
    1,
    growth=False,
    workers=False,
    heavy_connections=500,
    heavy_duration=1,
    floor_latency=False,
)
SECTIONS = ("growth", "observability", "workers2")


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    mode = QUICK if args.quick else FULL
    wrk = find_wrk()
    ensure_postgres(args.postgres)
    started = time.monotonic()
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "settings": asdict(mode),
        "only": args.only,
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "git": _git_head(),
        "serve_with": args.serve_with,
        "sections": {},
    }
    stem = run_stem("perf", report["mode"])
    failure: BaseException | None = None
    with fresh_postgres(args.postgres) as url, tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        try:
            _measure(report, args, mode, wrk, url, work)
        except (Exception, KeyboardInterrupt) as error:
            failure = error
            _record_failure(report, error, keep_logs(work, RESULTS / f"{stem}-logs"))
    report["seconds"] = round(time.monotonic() - started, 1)
    report["machine"]["load_after"] = os.getloadavg()
    report["summary"] = summarize(report)
    print()
    print(format_report(report))
    write_results(report, "perf", stem)
    if failure is not None:
        failed = report["failure"]
        print(f"\nTHE RUN FAILED in {failed['section']}: {failed['error']}", file=sys.stderr)
        if failed.get("logs"):
            print(f"the servers' logs are kept in {failed['logs']}", file=sys.stderr)
        return 130 if isinstance(failure, KeyboardInterrupt) else 2
    return 0 if not errors_in(report) else 1


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of a minute or two")
    parser.add_argument("--postgres", default=os.environ.get("PERF_DATABASE_URL", DEFAULT_POSTGRES))
    parser.add_argument("--redis", action="store_true", help="rate-limit counts in Redis")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=(*SCENARIOS, *DOORS, *SECTIONS),
        help="run these scenarios and sections only: REST scenarios, the MCP and chat calls "
        "(each with its REST scenario), growth (list latency by task count), observability "
        "(metrics and logging on against off), workers2 (the chosen scenarios with 2 workers)",
    )
    parser.add_argument(
        "--serve-with",
        metavar="COMMAND",
        help="serve the app with this command instead of `todo-api serve`, to weigh another "
        "HTTP server; {port} stands for the port, and --workers N is appended",
    )
    return parser.parse_args(argv)


def chosen(only: list[str] | None, mode: Mode) -> dict[str, Any]:
    """What the run measures: everything the mode has without --only, else what it names."""
    every, names = only is None, set(only or ())
    rest = [s for s in SCENARIOS if every or s in names]
    return {
        "scenarios": rest,
        "reference": [s for s in REFERENCE_SCENARIOS if s in rest],
        "doors": [d for d in DOORS if every or d in names],
        "growth": (every and mode.growth) or "growth" in names,
        "observability": every or "observability" in names,
        "workers2": bool(rest) and ((every and mode.workers) or "workers2" in names),
    }


@contextlib.contextmanager
def section(report: dict[str, Any], name: str) -> Iterator[None]:
    """Marks a section running, done or failed in the report; the innermost failed one is
    where the run failed."""
    report["sections"][name] = "running"
    try:
        yield
    except BaseException:
        report["sections"][name] = "failed"
        report.setdefault("failure", {"section": name})
        raise
    report["sections"][name] = "done"


def _measure(
    report: dict[str, Any], args: argparse.Namespace, mode: Mode, wrk: str, url: str, work: Path
) -> None:
    """Every section of the run, each writing its figures into `report` as it goes."""
    chose = chosen(args.only, mode)
    with contextlib.ExitStack() as stack:
        model_url = stack.enter_context(fake_model(work)) if chose["doors"] else None
        env = server_env(url, redis=args.redis, model_url=model_url)
        print(f"database {url.rsplit('/', 1)[-1]}: migrating and seeding", flush=True)
        subprocess.run([sys.executable, "-m", "todo_api", "db", "upgrade"], env=env, check=True)
        counts = {f"bench-user-{n:02}": mode.tasks_per_user for n in range(mode.users)}
        if chose["growth"]:
            counts |= GROWTH
        seeded = time.monotonic()
        owners = {owner.user_id: owner for owner in seed(url, counts)}
        report["seed_seconds"] = round(time.monotonic() - seeded, 1)
        print(f"seeded {sum(counts.values()):,} tasks in {report['seed_seconds']} s", flush=True)
        users = users_file(work / "users.txt", [owners[u] for u in counts if "bench" in u])
        bench = Bench(wrk, work)
        with (
            section(report, "1 worker"),
            measured(env, work, workers=1, serve_with=args.serve_with) as bases,
        ):
            ours, floor = bases["ours"], bases["floor"]
            sections.check_same_answers(ours, floor, owners["bench-user-00"])
            sections.warm_up(bench, bases, users, mode)
            report["rss_kib_before"] = {"ours": rss_of(ours), "floor": rss_of(floor)}
            if chose["scenarios"]:
                with section(report, "scenarios"):
                    into = report.setdefault("scenarios", {})
                    sections.scenarios(bench, bases, users, mode, chose["scenarios"], into)
            if chose["reference"]:
                with section(report, "reference"):
                    into = report.setdefault("reference", {})
                    sections.against_reference(bench, bases, users, mode, chose["reference"], into)
            if chose["doors"]:
                print("MCP tool calls and a chat turn against REST, on ours", flush=True)
                with section(report, "doors"):
                    into = report.setdefault("doors", {})
                    sections.doors(bench, ours, users, mode, chose["doors"], into)
            heavy = mode.heavy_connections
            with section(report, f"c{heavy}"):
                into = report.setdefault(f"c{heavy}", {})
                for name, base in (("ours", ours), ("floor", floor)):
                    into[name] = bench.load(
                        base, "mix", users, heavy, mode.heavy_duration, timeout=10
                    )
            if chose["growth"]:
                with section(report, "growth"):
                    into = report.setdefault("growth", {})
                    sections.growth(bench, bases, owners, work, mode, into)
            report["rss_kib_after"] = {"ours": rss_of(ours), "floor": rss_of(floor)}
        if chose["observability"]:
            print("metrics and logging, on against off", flush=True)
            with section(report, "observability"):
                into = report.setdefault("observability", {})
                sections.observability(bench, env, work, users, mode, into)
        if chose["workers2"]:
            print("2 workers each", flush=True)
            with (
                section(report, "2 workers"),
                measured(env, work, workers=2, serve_with=args.serve_with) as bases,
            ):
                sections.warm_up(bench, bases, users, mode)
                two = report.setdefault("workers2", {"scenarios": {}, "reference": {}})
                sections.scenarios(bench, bases, users, mode, chose["scenarios"], two["scenarios"])
                reference = two["reference"]
                sections.against_reference(bench, bases, users, mode, chose["reference"], reference)


def _record_failure(report: dict[str, Any], error: BaseException, logs: Path | None) -> None:
    """Why the run stopped, in the report: the section, the error, and for a server that
    vanished its exit code or signal, the OOM killer's part and its log's tail."""
    failure = report.setdefault("failure", {"section": "setup"})
    failure["error"] = str(error) or type(error).__name__
    failure["type"] = type(error).__name__
    if logs is not None:
        failure["logs"] = str(logs.relative_to(ROOT))
    if isinstance(error, ServerExited):
        server = dict(error.details)
        if logs is not None:
            server["log"] = str((logs / Path(server["log"]).name).relative_to(ROOT))
        failure["server"] = server
        failure["error"] = exit_message(server)


def _git_head() -> str | None:
    with contextlib.suppress(OSError, subprocess.CalledProcessError):
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    return None


if __name__ == "__main__":
    sys.exit(main())
