"""The benchmark's sections: what is loaded, on which server, in which order. Each section
fills the dict it is given as it goes, so that a run that fails later keeps what it measured."""

from __future__ import annotations

import contextlib
import datetime as dt
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from tests.network import free_port
from tests.perf.bench import SECRET, Bench
from tests.perf.bench import users_file as make_users_file
from tests.perf.seed import Owner
from tests.perf.servers import started
from todo_api.auth.authenticator import Expected, mint_token

SCENARIOS = ("list", "deep", "get", "create", "patch", "toggle", "mix")
# The MCP door's tool calls and a chat turn, each with the REST scenario doing the same.
DOORS = {"mcp-add": "create", "mcp-list": "list", "chat-add": "create"}
TITLES = {
    "list": "list first page",
    "deep": "list page 100",
    "get": "get one",
    "create": "create",
    "patch": "patch",
    "toggle": "toggle complete",
    "mix": "mix 80/20",
    "mcp-add": "mcp add_task",
    "mcp-list": "mcp list_tasks",
    "chat-add": "chat turn (add)",
}
# The calls the reference backend implements.
REFERENCE_SCENARIOS = ("list", "get", "create")
GROWTH = {"growth-100": 100, "growth-10k": 10_000, "growth-100k": 100_000}
# Metrics and the per-request log line, on as `serve` deploys them (JSON lines to a file), or
# both off: no metrics, and no line below WARNING.
OBSERVED = {"on": {"METRICS_ENABLED": "true", "LOG_LEVEL": "INFO", "LOG_FORMAT": "json"}}
OBSERVED["off"] = {"METRICS_ENABLED": "false", "LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}
OBSERVED_SCENARIOS = ("get", "create", "mix")


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


def warm_up(bench: Bench, bases: dict[str, str], users_file: Path, mode: Mode) -> None:
    """The mix at 100 connections for the service and the floor; the reference implements only
    some of the mix, and stalls at 100 connections (see against_reference): its calls at 10."""
    for name, base in bases.items():
        if name == "reference":
            for scenario in REFERENCE_SCENARIOS:
                bench.load(base, scenario, users_file, 10, mode.warmup)
        else:
            bench.load(base, "mix", users_file, 100, mode.warmup)


def scenarios(
    bench: Bench,
    bases: dict[str, str],
    users_file: Path,
    mode: Mode,
    chosen: list[str],
    results: dict[str, Any],
) -> None:
    """Each scenario on ours, then on the floor: throughput at 100 connections, latency at 10."""
    for scenario in chosen:
        results[scenario] = {}
        for name in ("ours", "floor"):
            base = bases[name]
            if mode.scenario_warmup:
                bench.load(base, scenario, users_file, 100, mode.scenario_warmup)
            results[scenario][name] = {
                "c100": bench.load(base, scenario, users_file, 100, mode.duration)
            }
            latency = mode.latency_duration if name == "ours" or mode.floor_latency else 0
            results[scenario][name]["c10"] = bench.load(base, scenario, users_file, 10, latency)
        ours, floor = results[scenario]["ours"]["c100"], results[scenario]["floor"]["c100"]
        print(
            f"  {TITLES[scenario]:<16} ours {ours['rps']:>8.0f}/s  floor {floor['rps']:>8.0f}/s  "
            f"ratio {ours['rps'] / floor['rps'] if floor['rps'] else 0:.2f}",
            flush=True,
        )


def against_reference(
    bench: Bench,
    bases: dict[str, str],
    users_file: Path,
    mode: Mode,
    chosen: list[str],
    results: dict[str, Any],
) -> None:
    """Ours against the FastAPI + SQLModel reference (tests/perf/reference.py) on the calls it
    implements: in turns at 10 connections (the lead), then at 100 (whether it still serves).

    Under 100 connections the reference can stall: every thread of its pool waits for a
    database connection that only another thread's teardown would return. Each 100-connection
    run waits for it to answer again (up to a minute) before the next, so that one scenario's
    stall is not counted against the next."""
    for scenario in chosen:
        results[scenario] = {"ours": {}, "reference": {}}
    for connections in (10, 100):
        for scenario in chosen:
            for name in ("ours", "reference"):
                base = bases[name]
                if mode.scenario_warmup:
                    bench.load(base, scenario, users_file, connections, mode.scenario_warmup)
                result = bench.load(
                    base, scenario, users_file, connections, mode.duration, timeout=10
                )
                if name == "reference":
                    result["recovered_after_s"] = recovery_seconds(base)
                results[scenario][name][f"c{connections}"] = result
            ours, reference = (results[scenario][n][f"c{connections}"] for n in results[scenario])
            print(
                f"  {TITLES[scenario]:<16} ours {ours['rps']:>8.0f}/s  reference "
                f"{reference['rps']:>8.0f}/s  at {connections} connections, errors "
                f"{ours['errors']} and {reference['errors']}",
                flush=True,
            )


def recovery_seconds(base: str, limit: float = 60) -> float | None:
    """How long `base` took to answer its health check again, or None if it did not."""
    started_at = time.monotonic()
    while time.monotonic() - started_at < limit:
        with contextlib.suppress(httpx2.TransportError):
            if httpx2.get(f"{base}/api/health", timeout=5).status_code == 200:
                return round(time.monotonic() - started_at, 1)
        time.sleep(0.5)
    return None


def doors(
    bench: Bench,
    ours: str,
    users_file: Path,
    mode: Mode,
    chosen: list[str],
    results: dict[str, Any],
) -> None:
    """The MCP door's tool calls and a chat turn on ours, each right after the REST scenario
    doing the same, at 100 connections (throughput) and at 10 (latency): `results["rest"]`
    holds the REST figures, measured once before the doors that share them."""
    rest: dict[str, list[str]] = {}
    for door in chosen:
        rest.setdefault(DOORS[door], []).append(door)
        # The first turns pay for what is made once (the chat agent, the model's connections).
        bench.load(ours, door, users_file, 10, mode.warmup)
        results[door] = {"rest_scenario": DOORS[door]}
    results["rest"] = {scenario: {} for scenario in rest}
    for connections, seconds in ((100, mode.duration), (10, mode.latency_duration)):
        key = f"c{connections}"
        for rest_scenario, paired in rest.items():
            for scenario in (rest_scenario, *paired):
                if mode.scenario_warmup:
                    bench.load(ours, scenario, users_file, connections, mode.scenario_warmup)
                result = bench.load(ours, scenario, users_file, connections, seconds, timeout=10)
                if scenario == rest_scenario:
                    results["rest"][scenario][key] = measured = result
                    continue
                results[scenario][key] = result
                print(
                    f"  {TITLES[scenario]:<16} {result['rps']:>8.0f}/s  {rest_scenario} "
                    f"{measured['rps']:>8.0f}/s  at {connections} connections, errors "
                    f"{result['errors']} and {measured['errors']}",
                    flush=True,
                )


def growth(
    bench: Bench,
    bases: dict[str, str],
    owners: dict[str, Owner],
    work: Path,
    mode: Mode,
    results: dict[str, Any],
) -> None:
    """List latency at 10 connections for one user, by how many tasks the user has."""
    for user, tasks in GROWTH.items():
        single = make_users_file(work / f"{user}.txt", [owners[user]])
        bench.load(bases["ours"], "list", single, 10, mode.scenario_warmup)
        results[user] = {"tasks": tasks}
        for name in ("ours", "floor"):
            results[user][name] = bench.load(bases[name], "list", single, 10, mode.latency_duration)


def observability(
    bench: Bench,
    env: dict[str, str],
    work: Path,
    users_file: Path,
    mode: Mode,
    results: dict[str, Any],
) -> None:
    """The service with metrics and logging on against itself with them off, in turns."""
    commands = {}
    for name, settings in OBSERVED.items():
        port = free_port()
        command = [sys.executable, "-m", "todo_api", "serve", "--port", str(port)]
        commands[f"observed-{name}"] = (command, port, env | settings)
    for scenario in OBSERVED_SCENARIOS:
        results[scenario] = {"on": [], "off": []}
    with started(commands, work, workers=1) as bases:
        for base in bases.values():
            bench.load(base, "mix", users_file, 100, mode.warmup)
        for turn in range(mode.observability_rounds):
            # on, off, then off, on: neither always goes first.
            order = ("on", "off") if turn % 2 == 0 else ("off", "on")
            for scenario in OBSERVED_SCENARIOS:
                for name in order:
                    base = bases[f"observed-{name}"]
                    result = bench.load(base, scenario, users_file, 100, mode.duration)
                    results[scenario][name].append(result)


def check_same_answers(ours: str, floor: str, owner: Owner) -> None:
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
