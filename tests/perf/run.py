"""The load benchmark: the service against a bare floor, side by side in one run.

    python -m tests.perf.run [--quick] [--postgres URL] [--redis] [--serve-with COMMAND]

Ensures PostgreSQL is up, creates a fresh database, migrates it, seeds it with COPY, mints
tokens, starts the service (`todo-api serve`) and the floor (tests/perf/floor.py) as deployed,
drives both with wrk (tests/perf/load.lua), prints a table, writes the results as JSON to
tests/perf/results/ and cleans up. Absolute numbers on a shared machine are noise; ours/floor,
measured alternately in the same run, is the figure that matters.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import math
import os
import secrets
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx2

from tests.databases import fresh_postgres
from tests.network import free_port, wait_until_healthy
from tests.perf.seed import Owner, seed
from todo_api.auth.authenticator import Expected, mint_token

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
RESULTS = HERE / "results"
SCRIPT = HERE / "load.lua"
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
SECRET = secrets.token_urlsafe(32)
SCENARIOS = ("list", "deep", "get", "create", "patch", "toggle", "mix")
TITLES = {
    "list": "list first page",
    "deep": "list page 100",
    "get": "get one",
    "create": "create",
    "patch": "patch",
    "toggle": "toggle complete",
    "mix": "mix 80/20",
}
# The calls the reference backend implements.
REFERENCE_SCENARIOS = ("list", "get", "create")
GROWTH = {"growth-100": 100, "growth-10k": 10_000, "growth-100k": 100_000}


@dataclass(frozen=True)
class Mode:
    users: int
    tasks_per_user: int
    # Whole seconds: wrk takes no fractions.
    warmup: int
    scenario_warmup: int
    duration: int
    latency_duration: int
    growth: bool
    workers: bool
    heavy_connections: int
    heavy_duration: int
    # The floor's latency is for reference only; the targets are on ours.
    floor_latency: bool = True
    # Turns of metrics and logging on against off, each scenario once a turn.
    observability_rounds: int = 4


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.run", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run of under a minute")
    parser.add_argument("--postgres", default=os.environ.get("PERF_DATABASE_URL", DEFAULT_POSTGRES))
    parser.add_argument("--redis", action="store_true", help="rate-limit counts in Redis")
    parser.add_argument(
        "--only",
        nargs="*",
        choices=(*SCENARIOS, "observability"),
        help="run these scenarios only (observability: metrics and logging on against off)",
    )
    parser.add_argument(
        "--serve-with",
        metavar="COMMAND",
        help="serve the app with this command instead of `todo-api serve`, to weigh another "
        "HTTP server; {port} stands for the port, and --workers N is appended",
    )
    args = parser.parse_args(argv)
    mode = QUICK if args.quick else FULL
    wrk = _find_wrk()
    _ensure_postgres(args.postgres)
    started = time.monotonic()
    report: dict[str, Any] = {
        "started": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "mode": "quick" if args.quick else "full",
        "settings": asdict(mode),
        "machine": {"cpus": os.cpu_count(), "load_before": os.getloadavg()},
        "git": _git_head(),
        "serve_with": args.serve_with,
    }
    with fresh_postgres(args.postgres) as url, tempfile.TemporaryDirectory() as work_dir:
        work = Path(work_dir)
        env = _server_env(url, redis=args.redis)
        print(f"database {url.rsplit('/', 1)[-1]}: migrating and seeding", flush=True)
        subprocess.run([sys.executable, "-m", "todo_api", "db", "upgrade"], env=env, check=True)
        counts = {f"bench-user-{n:02}": mode.tasks_per_user for n in range(mode.users)}
        if mode.growth:
            counts |= GROWTH
        seeded = time.monotonic()
        owners = {owner.user_id: owner for owner in seed(url, counts)}
        report["seed_seconds"] = round(time.monotonic() - seeded, 1)
        print(f"seeded {sum(counts.values()):,} tasks in {report['seed_seconds']} s", flush=True)
        users_file = _users_file(work / "users.txt", [owners[u] for u in counts if "bench" in u])
        bench = Bench(wrk, work)
        with _servers(env, work, workers=1, serve_with=args.serve_with) as bases:
            ours, floor = bases["ours"], bases["floor"]
            _check_same_answers(ours, floor, owners["bench-user-00"])
            _warm_up(bench, bases, users_file, mode)
            report["rss_kib_before"] = {"ours": _rss(ours), "floor": _rss(floor)}
            report["scenarios"] = _scenarios(bench, bases, users_file, mode, args.only)
            report["reference"] = _against_reference(bench, bases, users_file, mode, args.only)
            heavy = mode.heavy_connections
            report[f"c{heavy}"] = {
                name: bench.load(base, "mix", users_file, heavy, mode.heavy_duration, timeout=10)
                for name, base in (("ours", ours), ("floor", floor))
            }
            report["rss_kib_after"] = {"ours": _rss(ours), "floor": _rss(floor)}
        if args.only is None or "observability" in args.only:
            print("metrics and logging, on against off", flush=True)
            report["observability"] = _observability(bench, env, work, users_file, mode)
            if mode.growth:
                report["growth"] = {}
                for user in GROWTH:
                    single = _users_file(work / f"{user}.txt", [owners[user]])
                    bench.load(ours, "list", single, 10, mode.scenario_warmup)
                    report["growth"][user] = {
                        "tasks": counts[user],
                        "ours": bench.load(ours, "list", single, 10, mode.latency_duration),
                        "floor": bench.load(floor, "list", single, 10, mode.latency_duration),
                    }
        if mode.workers:
            print("2 workers each", flush=True)
            with _servers(env, work, workers=2, serve_with=args.serve_with) as bases:
                _warm_up(bench, bases, users_file, mode)
                report["workers2"] = {
                    "scenarios": _scenarios(bench, bases, users_file, mode, args.only),
                    "reference": _against_reference(bench, bases, users_file, mode, args.only),
                }
    report["seconds"] = round(time.monotonic() - started, 1)
    report["machine"]["load_after"] = os.getloadavg()
    print()
    print(format_report(report))
    write_results(report, "perf")
    return 0 if not _errors_in(report) else 1


def write_results(report: dict[str, Any], name: str) -> None:
    """The run's figures as JSON in tests/perf/results/ (not committed)."""
    RESULTS.mkdir(exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS / f"{name}-{report['mode']}-{stamp}.json"
    path.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nresults: {path.relative_to(ROOT)}")


def _warm_up(bench: Bench, bases: dict[str, str], users_file: Path, mode: Mode) -> None:
    """The mix at 100 connections for the service and the floor; the reference implements only
    some of the mix, and stalls at 100 connections (see _against_reference): its calls at 10."""
    for name, base in bases.items():
        if name == "reference":
            for scenario in REFERENCE_SCENARIOS:
                bench.load(base, scenario, users_file, 10, mode.warmup)
        else:
            bench.load(base, "mix", users_file, 100, mode.warmup)


def _scenarios(
    bench: Bench, bases: dict[str, str], users_file: Path, mode: Mode, only: list[str] | None
) -> dict[str, Any]:
    """Each scenario on ours, then on the floor: throughput at 100 connections, latency at 10."""
    results: dict[str, Any] = {}
    for scenario in [name for name in only or SCENARIOS if name in SCENARIOS]:
        results[scenario] = {}
        for name in ("ours", "floor"):
            base = bases[name]
            if mode.scenario_warmup:
                bench.load(base, scenario, users_file, 100, mode.scenario_warmup)
            results[scenario][name] = {
                "c100": bench.load(base, scenario, users_file, 100, mode.duration),
                "c10": bench.load(
                    base,
                    scenario,
                    users_file,
                    10,
                    mode.latency_duration if name == "ours" or mode.floor_latency else 0,
                ),
            }
        _print_progress(scenario, results[scenario])
    return results


def _against_reference(
    bench: Bench, bases: dict[str, str], users_file: Path, mode: Mode, only: list[str] | None
) -> dict[str, Any]:
    """Ours against the FastAPI + SQLModel reference (tests/perf/reference.py) on the calls it
    implements: in turns at 10 connections (the lead), then at 100 (whether it still serves).

    Under 100 connections the reference can stall: every thread of its pool waits for a
    database connection that only another thread's teardown would return. Each 100-connection
    run waits for it to answer again (up to a minute) before the next, so that one scenario's
    stall is not counted against the next."""
    scenarios = [name for name in only or REFERENCE_SCENARIOS if name in REFERENCE_SCENARIOS]
    results: dict[str, Any] = {s: {"ours": {}, "reference": {}} for s in scenarios}
    for connections in (10, 100):
        for scenario in scenarios:
            for name in ("ours", "reference"):
                base = bases[name]
                if mode.scenario_warmup:
                    bench.load(base, scenario, users_file, connections, mode.scenario_warmup)
                result = bench.load(
                    base, scenario, users_file, connections, mode.duration, timeout=10
                )
                if name == "reference":
                    result["recovered_after_s"] = _recovery_seconds(base)
                results[scenario][name][f"c{connections}"] = result
            ours, reference = (results[scenario][n][f"c{connections}"] for n in results[scenario])
            print(
                f"  {TITLES[scenario]:<16} ours {ours['rps']:>8.0f}/s  reference "
                f"{reference['rps']:>8.0f}/s  at {connections} connections, errors "
                f"{ours['errors']} and {reference['errors']}",
                flush=True,
            )
    return results


def _recovery_seconds(base: str, limit: float = 60) -> float | None:
    """How long `base` took to answer its health check again, or None if it did not."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        with contextlib.suppress(httpx2.TransportError):
            if httpx2.get(f"{base}/api/health", timeout=5).status_code == 200:
                return round(time.monotonic() - started, 1)
        time.sleep(0.5)
    return None


class Bench:
    def __init__(self, wrk: str, work: Path) -> None:
        self._wrk = wrk
        self._work = work

    def load(
        self,
        base: str,
        scenario: str,
        users_file: Path,
        connections: int,
        seconds: int,
        timeout: int = 5,
    ) -> dict[str, Any]:
        """One wrk run: throughput, latency percentiles (ms) and every error counted."""
        if seconds <= 0:
            return {}
        command = [
            self._wrk,
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            f"--timeout={timeout}s",
            "-s",
            str(SCRIPT),
            base,
            "--",
            scenario,
            str(users_file),
        ]
        cpu_before = _cpu_seconds(base)
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        line = next(
            (ln for ln in finished.stdout.splitlines() if ln.startswith("PERF-RESULT ")), None
        )
        if finished.returncode != 0 or line is None:
            raise RuntimeError(f"wrk failed: {finished.stderr or finished.stdout}")
        raw = json.loads(line.removeprefix("PERF-RESULT "))
        cpu = _cpu_seconds(base) - cpu_before
        _wait_until_idle(base)
        errors = raw["non2xx"] + sum(raw["errors"].values())
        latency = {key: round(value / 1000, 2) for key, value in raw["latency_us"].items()}
        return {
            "connections": connections,
            "seconds": round(raw["duration_us"] / 1e6, 2),
            "requests": raw["requests"],
            "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "latency_ms": latency,
            # Server CPU per answer: what others' load on a shared machine disturbs least.
            "cpu_ms_per_request": round(1000 * cpu / max(raw["requests"], 1), 3),
            "errors": errors,
            "non2xx": raw["non2xx"],
            "statuses": raw["statuses"],
            "socket_errors": raw["errors"],
        }


def _find_wrk() -> str:
    found = shutil.which("wrk")
    if found:
        return found
    print("wrk is not installed: trying `apt-get install wrk` (Debian package)", flush=True)
    if os.geteuid() == 0 and shutil.which("apt-get"):
        subprocess.run(["apt-get", "update", "-q"], check=False, stdout=subprocess.DEVNULL)
        subprocess.run(["apt-get", "install", "-y", "-q", "wrk"], check=False)
        found = shutil.which("wrk")
        if found:
            return found
    sys.exit(
        "The benchmark needs wrk and could not install it. Install it and run again: "
        "`apt-get install wrk` on Debian or Ubuntu, `brew install wrk` on macOS."
    )


def _ensure_postgres(url: str) -> None:
    if subprocess.run(["pg_isready", "-q", "-d", url], check=False).returncode == 0:
        return
    clusters = sorted(Path("/etc/postgresql").glob("*")) if Path("/etc/postgresql").is_dir() else []
    if clusters and shutil.which("pg_ctlcluster"):
        print("PostgreSQL is not answering: starting it", flush=True)
        command = ["pg_ctlcluster", "--skip-systemctl-redirect", clusters[-1].name, "main", "start"]
        subprocess.run(command, check=False)
        for _ in range(30):
            if subprocess.run(["pg_isready", "-q", "-d", url], check=False).returncode == 0:
                return
            time.sleep(1)
    sys.exit(f"PostgreSQL does not answer at {url}; start it or pass --postgres URL.")


def _server_env(url: str, *, redis: bool) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env |= {
        "DATABASE_URL": url,
        "BETTER_AUTH_SECRET": SECRET,
        "AUTO_MIGRATE": "false",
        # Deployed settings, with limits far above the benchmark's load: their cost is
        # measured, never their refusals.
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_PER_USER": str(10**9),
        "RATE_LIMIT_PER_ADDRESS": str(10**9),
        "TASK_QUOTA": str(10**8),
        "PYTHONPATH": str(ROOT),
    }
    if redis:
        env["REDIS_URL"] = "redis://127.0.0.1:6379/14"
    return env


def _users_file(path: Path, owners: list[Owner]) -> Path:
    lines = []
    for owner in owners:
        token = mint_token(SECRET, owner.user_id, dt.timedelta(hours=12), Expected())
        lines.append(f"{token} {owner.first_id} {owner.last_id} {owner.deep_cursor or 'none'}\n")
    path.write_text("".join(lines))
    return path


@contextlib.contextmanager
def _servers(
    env: dict[str, str], work: Path, *, workers: int, serve_with: str | None = None
) -> Iterator[dict[str, str]]:
    """The service, the floor and the reference backend, each with `workers` processes,
    started as deployed: their base URLs by name."""
    ports = {name: free_port() for name in ("ours", "floor", "reference")}
    ours = [sys.executable, "-m", "todo_api", "serve", "--port", str(ports["ours"])]
    if serve_with:
        ours = shlex.split(serve_with.format(port=ports["ours"]))
    commands = {
        "ours": ours,
        "floor": [sys.executable, "-m", "tests.perf.floor", "--port", str(ports["floor"])],
        "reference": [
            sys.executable,
            "-m",
            "tests.perf.reference",
            "--port",
            str(ports["reference"]),
        ],
    }
    started = {name: (command, ports[name], env) for name, command in commands.items()}
    with _started(started, work, workers) as bases:
        yield bases


# Metrics and the per-request log line, on as `serve` deploys them (JSON lines to a file), or
# both off: no metrics, and no line below WARNING.
OBSERVED = {"on": {"METRICS_ENABLED": "true", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}}
OBSERVED["off"] = {"METRICS_ENABLED": "false", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
OBSERVED_SCENARIOS = ("get", "create", "mix")


def _observability(
    bench: Bench, env: dict[str, str], work: Path, users_file: Path, mode: Mode
) -> dict[str, Any]:
    """The service with metrics and logging on against itself with them off, in turns."""
    started = {}
    for name, settings in OBSERVED.items():
        port = free_port()
        command = [sys.executable, "-m", "todo_api", "serve", "--port", str(port)]
        started[name] = (command, port, env | settings)
    results: dict[str, Any] = {scenario: {"on": [], "off": []} for scenario in OBSERVED_SCENARIOS}
    with _started(started, work, workers=1) as bases:
        for base in bases.values():
            bench.load(base, "mix", users_file, 100, mode.warmup)
        for turn in range(mode.observability_rounds):
            # on, off, then off, on: neither always goes first.
            order = ("on", "off") if turn % 2 == 0 else ("off", "on")
            for scenario in OBSERVED_SCENARIOS:
                for name in order:
                    result = bench.load(bases[name], scenario, users_file, 100, mode.duration)
                    results[scenario][name].append(result)
    return results


@contextlib.contextmanager
def _started(
    commands: dict[str, tuple[list[str], int, dict[str, str]]], work: Path, workers: int
) -> Iterator[dict[str, str]]:
    """Each command, with its environment, listening on its port, until the block ends."""
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, (command, _, env) in commands.items():
            log = (work / f"{name}-{workers}.log").open("ab")
            processes[name] = subprocess.Popen(
                [*command, "--workers", str(workers)], env=env, stdout=log, stderr=log, cwd=ROOT
            )
        bases = {name: f"http://127.0.0.1:{port}" for name, (_, port, _) in commands.items()}
        for name, base in bases.items():
            wait_until_healthy(f"{base}/api", processes[name])
            _PIDS[base] = processes[name].pid
        yield bases
    finally:
        for process in processes.values():
            process.send_signal(signal.SIGTERM)
        for process in processes.values():
            try:
                process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


_PIDS: dict[str, int] = {}


def _workers(base: str) -> list[int]:
    """The processes that serve `base`."""
    pid = _PIDS[base]
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    # With --workers N > 1, uvicorn's first process only supervises; the workers do the work
    # (its other child is multiprocessing's resource tracker).
    workers = []
    for child in children:
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                workers.append(int(child))
    return workers or [pid]


def _cpu_seconds(base: str) -> float:
    """User and system CPU time used so far by the processes serving `base`."""
    ticks = 0
    for worker in _workers(base):
        with contextlib.suppress(OSError):
            # Fields 14 and 15 of /proc/PID/stat, after the parenthesised command name.
            fields = Path(f"/proc/{worker}/stat").read_text().rpartition(")")[2].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _wait_until_idle(base: str, seconds: float = 10) -> None:
    """wrk stops sending, but the server still works off what it had accepted: wait until it
    has, or the next run measures this one's backlog."""
    deadline = time.monotonic() + seconds
    used = _cpu_seconds(base)
    while time.monotonic() < deadline:
        time.sleep(0.15)
        now = _cpu_seconds(base)
        if now - used < 0.015:
            return
        used = now


def _rss(base: str) -> list[int]:
    """Resident memory (KiB) of each worker process serving `base`."""
    sizes = []
    for worker in _workers(base):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{worker}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]))
    return sizes


def _check_same_answers(ours: str, floor: str, owner: Owner) -> None:
    """The floor must answer what the service answers, or the ratio compares different work."""
    token = mint_token(SECRET, owner.user_id, dt.timedelta(hours=1), Expected())
    headers = {"Authorization": f"Bearer {token}"}
    paths = [
        "/api/tasks?limit=50",
        f"/api/tasks?limit=50&cursor={owner.deep_cursor}",
        f"/api/tasks/{owner.first_id}",
        f"/api/tasks/{owner.last_id}",
    ]
    for path in paths:
        answers = [httpx2.get(base + path, headers=headers) for base in (ours, floor)]
        for answer in answers:
            if answer.status_code != 200:
                raise RuntimeError(f"{answer.url}: {answer.status_code} {answer.text[:300]}")
        a, b = answers
        if a.json() != b.json():
            raise RuntimeError(f"{path}: the floor's body differs from the service's")
        for header in ("X-Total-Count", "Link"):
            if a.headers.get(header) != b.headers.get(header):
                raise RuntimeError(
                    f"{path}: {header} differs: {a.headers.get(header)!r}, "
                    f"{b.headers.get(header)!r}"
                )
    # Writes: one of each, through both, on the user's last task.
    for base in (ours, floor):
        writes = [
            ("POST", "/api/tasks", {"title": "Check", "tags": ["bench"]}, 201),
            ("PATCH", f"/api/tasks/{owner.last_id}", {"title": "Checked"}, 200),
            ("POST", f"/api/tasks/{owner.last_id}/complete", None, 200),
        ]
        for method, path, body, status in writes:
            answer = httpx2.request(method, base + path, headers=headers, json=body)
            if answer.status_code != status:
                raise RuntimeError(f"{method} {base}{path}: {answer.status_code} {answer.text}")


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


def _errors_in(report: dict[str, Any]) -> int:
    total = 0

    def walk(node: Any) -> None:
        nonlocal total
        if isinstance(node, dict):
            if "errors" in node and isinstance(node["errors"], int):
                total += node["errors"]
            for key, value in node.items():
                # The reference backend's errors are a finding about it, not a failed run.
                if key != "reference":
                    walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(report)
    return total


def _print_progress(scenario: str, result: dict[str, Any]) -> None:
    ours, floor = result["ours"]["c100"], result["floor"]["c100"]
    ratio = ours["rps"] / floor["rps"] if floor["rps"] else 0
    print(
        f"  {TITLES[scenario]:<16} ours {ours['rps']:>8.0f}/s  floor {floor['rps']:>8.0f}/s  "
        f"ratio {ratio:.2f}",
        flush=True,
    )


def format_report(report: dict[str, Any]) -> str:
    """The table: throughput at 100 connections, latency at 10, ours against the floor."""
    lines = [
        f"{report['mode']} run, {report['started']}, commit {report['git']}; "
        "rps at 100 connections, latency (ms) at 10 connections, server CPU ms per request "
        "at 100 connections (cpu ratio = floor/ours, comparable to ours/floor rps)",
        "",
        f"{'scenario':<16} {'ours rps':>9} {'floor rps':>9} {'ours/floor':>10} "
        f"{'ours p50':>8} {'ours p99':>8} {'floor p50':>9} {'floor p99':>9} "
        f"{'ours cpu':>8} {'floor cpu':>9} {'cpu ratio':>9} {'errors':>6}",
    ]
    scenarios = report.get("scenarios", {})
    lines += _scenario_rows(scenarios)
    lines += _reference_rows(report.get("reference", {}))
    lines.append("")
    if "list" in scenarios and "deep" in scenarios:
        for name in ("ours", "floor"):
            deep = scenarios["deep"][name]["c100"]["rps"] / scenarios["list"][name]["c100"]["rps"]
            lines.append(f"deep page / first page throughput, {name}: {deep:.2f}")
    for key in report:
        if key.startswith("c") and key[1:].isdigit():
            for name, result in report[key].items():
                lines.append(
                    f"mix at {key[1:]} connections, {name}: {result['rps']:.0f}/s, "
                    f"p99 {result['latency_ms']['p99']:.0f} ms, errors {result['errors']}"
                    + (f" ({result['statuses']})" if result["statuses"] else "")
                )
    for name in ("ours", "floor"):
        before, after = report["rss_kib_before"][name], report["rss_kib_after"][name]
        lines.append(
            f"worker RSS, {name}: {', '.join(f'{b / 1024:.0f}' for b in before)} MiB before, "
            f"{', '.join(f'{a / 1024:.0f}' for a in after)} MiB after"
        )
    if "growth" in report:
        lines.append("")
        lines.append("list latency (ms) at 10 connections for one user, by task count:")
        lines.append(
            f"{'tasks':>8} {'ours p50':>8} {'ours p99':>8} {'floor p50':>9} {'floor p99':>9}"
        )
        for result in report["growth"].values():
            ours, floor = result["ours"]["latency_ms"], result["floor"]["latency_ms"]
            lines.append(
                f"{result['tasks']:>8,} {ours['p50']:>8.1f} {ours['p99']:>8.1f} "
                f"{floor['p50']:>9.1f} {floor['p99']:>9.1f}"
            )
    if "observability" in report:
        lines.append("")
        lines.append(
            "metrics and logging on against off: rps at 100 connections (median of turns), "
            "server CPU ms per request (median)"
        )
        lines.append(
            f"{'scenario':<16} {'on rps':>8} {'off rps':>8} {'on/off':>7} "
            f"{'on cpu':>7} {'off cpu':>7} {'off/on cpu':>10}"
        )
        for scenario, turns in report["observability"].items():
            on, off = _medians(turns["on"]), _medians(turns["off"])
            lines.append(
                f"{TITLES[scenario]:<16} {on['rps']:>8.0f} {off['rps']:>8.0f} "
                f"{on['rps'] / off['rps']:>7.2f} {on['cpu']:>7.2f} {off['cpu']:>7.2f} "
                f"{off['cpu'] / on['cpu']:>10.2f}"
            )
    if "workers2" in report:
        lines.append("")
        lines.append("2 workers each:")
        lines += _scenario_rows(report["workers2"]["scenarios"])
        lines += _reference_rows(report["workers2"]["reference"])
    errors = _errors_in(report)
    lines.append("")
    lines.append(
        f"errors: {errors}"
        + ("  (A RUN WITH ERRORS IS NOT A RESULT)" if errors else "")
        + f"; took {report.get('seconds')} s"
    )
    return "\n".join(lines)


def _scenario_rows(scenarios: dict[str, Any]) -> list[str]:
    lines = []
    for scenario, result in scenarios.items():
        ours, floor = result["ours"], result["floor"]
        ratio = ours["c100"]["rps"] / floor["c100"]["rps"] if floor["c100"]["rps"] else 0
        errors = sum(r[c].get("errors", 0) for r in (ours, floor) for c in ("c100", "c10"))
        floor_latency = floor["c10"].get("latency_ms", {"p50": math.nan, "p99": math.nan})
        ours_cpu = ours["c100"]["cpu_ms_per_request"]
        floor_cpu = floor["c100"]["cpu_ms_per_request"]
        lines.append(
            f"{TITLES[scenario]:<16} {ours['c100']['rps']:>9.0f} {floor['c100']['rps']:>9.0f} "
            f"{ratio:>10.2f} {ours['c10']['latency_ms']['p50']:>8.1f} "
            f"{ours['c10']['latency_ms']['p99']:>8.1f} {floor_latency['p50']:>9.1f} "
            f"{floor_latency['p99']:>9.1f} {ours_cpu:>8.2f} {floor_cpu:>9.2f} "
            f"{floor_cpu / ours_cpu if ours_cpu else 0:>9.2f} {errors:>6}"
        )
    return lines


def _reference_rows(reference: dict[str, Any]) -> list[str]:
    """Ours against the FastAPI + SQLModel reference: rps and p99 at 10 and 100 connections."""
    if not reference:
        return []
    lines = [
        "",
        "against the FastAPI + SQLModel reference (tests/perf/reference.py): rps, p99 ms, errors",
        f"{'scenario':<16} {'conns':>5} {'ours rps':>9} {'ref rps':>9} {'ours/ref':>8} "
        f"{'ours p99':>8} {'ref p99':>8} {'ours err':>8} {'ref err':>8}",
    ]
    for scenario, result in reference.items():
        for connections in ("c10", "c100"):
            ours, ref = result["ours"][connections], result["reference"][connections]
            lines.append(
                f"{TITLES[scenario]:<16} {connections[1:]:>5} {ours['rps']:>9.0f} "
                f"{ref['rps']:>9.0f} {ours['rps'] / ref['rps'] if ref['rps'] else math.inf:>8.2f} "
                f"{ours['latency_ms']['p99']:>8.1f} {ref['latency_ms']['p99']:>8.1f} "
                f"{ours['errors']:>8} {ref['errors']:>8}"
                + (
                    f"  (the reference answered again after {ref['recovered_after_s']} s)"
                    if ref.get("recovered_after_s")
                    else ""
                )
            )
    return lines


def _medians(results: list[dict[str, Any]]) -> dict[str, float]:
    return {
        "rps": statistics.median(r["rps"] for r in results),
        "cpu": statistics.median(r["cpu_ms_per_request"] for r in results),
    }


if __name__ == "__main__":
    sys.exit(main())
