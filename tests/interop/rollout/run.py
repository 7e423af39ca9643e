"""A rolling restart behind a load balancer, as CI runs it:
`python -m tests.interop.rollout.run [--postgres URL] [--redis URL] [--logs DIR]`.

Three `todo-api serve` processes (one worker each) on one fresh PostgreSQL database, migrated
once beforehand (AUTO_MIGRATE=false), sharing Redis and BETTER_AUTH_SECRET, behind HAProxy
(round robin, a readiness check every 0.5 s, retries and redispatch, an admin socket). Under
constant load through HAProxy (client threads creating tasks and reading each back, and event
streams that resume with Last-Event-ID whenever they end), each process is restarted in turn as
Kubernetes rolls a Deployment: taken out of the balancer (its endpoint removed), a pause (the
preStop hook), SIGTERM, a new process on the same port, back in once it is ready. Then one
process is killed with SIGKILL mid-load and started again.

Targets (exit 1 if one is missed): during the rolling restart no request fails (a transport
error, a 5xx or any other unexpected status); no acknowledged create (a 201) is missing
afterwards, in either part; every stream sees the change of every acknowledged create, once;
each process ends by itself after SIGTERM. The requests that fail around the SIGKILL are
reported, not held to a target. Installs HAProxy with apt-get when it is missing and this runs
as root.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from tests.databases import fresh_postgres
from tests.interop.rollout.servers import (
    ROOT,
    HAProxy,
    Replica,
    install_haproxy,
    migrate,
    stop_all,
)
from tests.interop.rollout.traffic import (
    LOAD_THREADS,
    Load,
    Phase,
    Phases,
    Stream,
    clock,
)
from tests.network import free_port
from todo_api.auth.authenticator import Expected, mint_token

REPLICAS = 3
WARM_UP_SECONDS = 5.0
# Kubernetes' preStop pause: endpoints drop the pod, then it gets SIGTERM.
PRE_STOP_SECONDS = 1.5
SETTLE_SECONDS = 1.0
AFTER_SECONDS = 2.0
# `todo-api serve` waits up to 30 s for requests in flight (GRACEFUL_SHUTDOWN_SECONDS).
STOP_TIMEOUT = 40.0
CATCH_UP_SECONDS = 15.0


@dataclass
class Restart:
    replica: str
    stop_seconds: float
    exit_code: int | None
    ready_seconds: float
    up_seconds: float
    total_seconds: float


def step(title: str) -> None:
    print(f"== rollout: {title}", flush=True)


def note(title: str) -> None:
    print(f"{clock()} {title}", flush=True)


def roll(replica: Replica, proxy: HAProxy) -> Restart:
    """Kubernetes' rolling restart of one pod, with the balancer as its Service."""
    assert replica.process is not None
    began = time.monotonic()
    proxy.set_state(replica.name, "drain")  # its endpoint is removed
    note("drained")
    time.sleep(PRE_STOP_SECONDS)  # preStop
    term = time.monotonic()
    replica.process.send_signal(signal.SIGTERM)
    note("sigterm")
    try:
        code: int | None = replica.process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        replica.process.kill()  # the kubelet's SIGKILL after the grace period
        replica.process.wait()
        code = None
    stopped = time.monotonic()
    note("exited")
    replica.start()
    ready = replica.wait_ready()
    note("ready")
    proxy.set_state(replica.name, "ready")  # the new pod's endpoint is added
    up = proxy.wait_status(replica.name, "UP")
    return Restart(replica.name, stopped - term, code, ready, up, time.monotonic() - began)


def stored_tasks(base: str, headers: dict[str, str]) -> dict[int, str]:
    """Every task of the user, read from one process directly (not through the balancer)."""
    tasks: dict[int, str] = {}
    url: str | None = f"{base}/tasks?limit=500"
    origin = base.removesuffix("/api")
    with httpx2.Client(headers=headers, timeout=30) as client:
        while url is not None:
            page = client.get(url)
            page.raise_for_status()
            tasks.update({task["id"]: task["title"] for task in page.json()})
            following = page.links.get("next", {}).get("url")
            url = f"{origin}{following}" if following and following.startswith("/") else following
    return tasks


def lost(phase: Phase, stored: dict[int, str]) -> list[int]:
    return sorted(i for i, title in phase.acked.items() if stored.get(i) != title)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.interop.rollout.run")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument(
        "--logs", type=Path, help="keep the servers' and HAProxy's logs in this directory"
    )
    args = parser.parse_args(argv)
    # A CI job cancelled or timed out: stop the processes this started, then end.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    started = time.monotonic()
    if not install_haproxy():
        print("rollout check FAILED: haproxy is missing and cannot be installed here")
        return 1
    secret = secrets.token_urlsafe(48)
    run = uuid.uuid4().hex[:8]
    user = f"rollout-{run}"
    token = mint_token(secret, user, dt.timedelta(hours=1), Expected())
    headers = {"Authorization": f"Bearer {token}"}
    with (
        fresh_postgres(args.postgres) as database,
        tempfile.TemporaryDirectory(prefix="todo-rollout-") as scratch,
        contextlib.ExitStack() as cleanup,
    ):
        env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "DATABASE_URL": database,
            "BETTER_AUTH_SECRET": secret,
            "REDIS_URL": args.redis,
            "AUTO_MIGRATE": "false",
            # Every request comes from 127.0.0.1 through HAProxy: this measures the rollout,
            # not the limiter (the readiness probes are never limited).
            "RATE_LIMIT_PER_USER": "10000000",
            "RATE_LIMIT_PER_ADDRESS": "10000000",
            # Longer than HAProxy keeps a connection to a server idle under this load.
            "KEEP_ALIVE_TIMEOUT": "60",
            "LOG_LEVEL": "WARNING",
        }
        env.pop("TEST_DATABASE_URL", None)
        step(f"migrating a fresh database once; {REPLICAS} replicas, HAProxy in front")
        migrate(env)
        logs = args.logs or Path(scratch)
        logs.mkdir(parents=True, exist_ok=True)
        replicas = [Replica(f"r{n}", free_port(), env, logs) for n in range(1, REPLICAS + 1)]
        cleanup.callback(stop_all, replicas)
        for replica in replicas:
            replica.start()
        for replica in replicas:
            replica.wait_ready()
        proxy = HAProxy(logs, replicas)
        cleanup.callback(proxy.stop)
        proxy.start()
        for replica in replicas:
            proxy.wait_status(replica.name, "UP")
        try:
            outcome = exercise(proxy, replicas, headers, run)
        except BaseException:
            for replica in replicas:
                replica.show_log()
            # HAProxy's own lines (servers UP, DOWN, drained), not its line per request.
            lines = proxy.log.read_text(errors="replace").splitlines()
            print(*[line for line in lines if not line.startswith("127.0.0.1:")][-40:], sep="\n")
            raise
    return report(outcome, time.monotonic() - started)


@dataclass
class Outcome:
    phases: Phases
    streams: list[Stream]
    restarts: list[Restart]
    stored: dict[int, str]
    kill_down_seconds: float
    kill_restart_seconds: float


def exercise(proxy: HAProxy, replicas: list[Replica], headers: dict[str, str], run: str) -> Outcome:
    phases = Phases("rollout", "kill")
    streams = [Stream(n, f"{proxy.base}/tasks/events", headers, phases) for n in range(REPLICAS)]
    load = Load(proxy.base, headers, phases, run)
    try:
        for stream in streams:
            stream.start()
        for stream in streams:
            if not stream.opened.wait(10):
                raise SystemExit(f"stream {stream.n} did not open: {phases.current.failures}")
        step(f"load: {LOAD_THREADS} clients creating and reading back, {REPLICAS} event streams")
        load.start()
        time.sleep(WARM_UP_SECONDS)
        restarts = []
        for replica in replicas:
            step(f"rolling restart of {replica.name}: drain, preStop, SIGTERM, start, ready")
            restarts.append(roll(replica, proxy))
            time.sleep(SETTLE_SECONDS)
        time.sleep(AFTER_SECONDS)

        phases.switch("kill")
        victim = replicas[1]
        assert victim.process is not None
        step(f"SIGKILL to {victim.name} mid-load")
        victim.process.kill()
        victim.process.wait()
        down = proxy.wait_status(victim.name, "DOWN")
        time.sleep(AFTER_SECONDS)
        began = time.monotonic()
        victim.start()
        victim.wait_ready()
        proxy.wait_status(victim.name, "UP")
        restarted = time.monotonic() - began
        time.sleep(AFTER_SECONDS)
    finally:
        load.finish()
        acked = set(phases.acked())
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while time.monotonic() < deadline and any(s.missing(acked) for s in streams):
            time.sleep(0.1)
        for stream in streams:
            stream.stop.set()
        for stream in streams:
            stream.join(timeout=10)
    step("reading every acknowledged create back from a replica directly")
    stored = stored_tasks(replicas[0].base, headers)
    return Outcome(phases, streams, restarts, stored, down, restarted)


def report(outcome: Outcome, seconds: float) -> int:
    rollout, kill = outcome.phases.all["rollout"], outcome.phases.all["kill"]
    stored_titles = set(outcome.stored.values())
    acked = set(outcome.phases.acked())
    figures: dict[str, Any] = {"replicas": REPLICAS, "load_threads": LOAD_THREADS}
    for phase in (rollout, kill):
        figures[phase.name] = {
            "requests": phase.requests,
            "failed": len(phase.failures),
            "acked_creates": len(phase.acked),
            "lost": len(lost(phase, outcome.stored)),
            # Creates that got no 201 but were stored all the same (not a loss).
            "stored_unanswered": len(phase.unanswered & stored_titles),
            "slowest_ms": round(phase.slowest * 1000),
        }
    figures["streams"] = [
        {
            "reconnects": s.reconnects,
            "ended": s.ended,
            "broken": s.broken,
            "missed": len(s.missing(acked)),
            "duplicates": s.duplicates,
            "resets": s.resets,
            "changes": len(s.event_ids),
        }
        for s in outcome.streams
    ]
    figures["restarts"] = [
        {
            "replica": r.replica,
            "stop_s": round(r.stop_seconds, 2),
            "exit": r.exit_code,
            "ready_s": round(r.ready_seconds, 2),
            "up_s": round(r.up_seconds, 2),
            "total_s": round(r.total_seconds, 2),
        }
        for r in outcome.restarts
    ]
    figures["kill"]["down_after_s"] = round(outcome.kill_down_seconds, 2)
    figures["kill"]["back_after_s"] = round(outcome.kill_restart_seconds, 2)
    figures["requests"] = rollout.requests + kill.requests
    figures["seconds"] = round(seconds, 1)

    misses = []
    if rollout.failures:
        misses.append(f"{len(rollout.failures)} requests failed during the rolling restart")
    for phase in (rollout, kill):
        if missing := lost(phase, outcome.stored):
            misses.append(f"{len(missing)} acknowledged creates lost ({phase.name}): {missing[:5]}")
    for s in outcome.streams:
        if missed := s.missing(acked):
            misses.append(f"stream {s.n} missed {len(missed)} changes: {sorted(missed)[:5]}")
        if s.duplicates or s.resets:
            misses.append(f"stream {s.n}: {s.duplicates} duplicates, {s.resets} resets")
    for r in outcome.restarts:
        # uvicorn ends by raising the SIGTERM it caught again: -15, or 0 as PID 1.
        if r.exit_code not in (0, -signal.SIGTERM):
            misses.append(f"{r.replica} exited with {r.exit_code} after SIGTERM")
    figures["passed"] = not misses

    print()
    print(f"{'':28}{'rolling restart':>16}{'kill -9':>10}")
    for label, key in (
        ("requests", "requests"),
        ("failed requests", "failed"),
        ("acknowledged creates", "acked_creates"),
        ("acknowledged, then lost", "lost"),
        ("unanswered, yet stored", "stored_unanswered"),
        ("slowest request (ms)", "slowest_ms"),
    ):
        print(f"{label:28}{figures['rollout'][key]:>16}{figures['kill'][key]:>10}")
    for n, s in enumerate(figures["streams"]):
        print(
            f"stream {n}: {s['changes']} changes, {s['reconnects']} reconnects ({s['ended']} "
            f"ended by the server, {s['broken']} broken), {s['missed']} acknowledged creates "
            f"missed, {s['duplicates']} duplicates"
        )
    for r in figures["restarts"]:
        print(
            f"restart {r['replica']}: stopped {r['stop_s']} s after SIGTERM (exit {r['exit']}), "
            f"ready {r['ready_s']} s after start, {r['total_s']} s in all"
        )
    print(
        f"kill -9: HAProxy saw it DOWN after {figures['kill']['down_after_s']} s, "
        f"back UP {figures['kill']['back_after_s']} s after the restart; "
        f"{figures['requests']} requests in all, run {seconds:.0f} s"
    )
    for phase in (rollout, kill):
        for failure in phase.failures[:5]:
            print(f"  failed ({phase.name}): {failure}")
    print(f"ROLLOUT-JSON {json.dumps(figures, separators=(',', ':'))}", flush=True)
    if misses:
        print("rollout check FAILED:", *misses, sep="\n  ", flush=True)
        return 1
    print("rollout check: ok", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
