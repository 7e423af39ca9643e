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
import csv
import datetime as dt
import json
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx2

from tests.databases import fresh_postgres
from tests.network import free_port
from tests.sse import EventReader
from todo_api.auth.authenticator import Expected, mint_token

ROOT = Path(__file__).resolve().parents[3]
REPLICAS = 3
LOAD_THREADS = 4
# A client's pause between one create-and-read and the next: constant load that leaves the
# 2-core machine room to start the new processes.
THINK_SECONDS = 0.005
WARM_UP_SECONDS = 5.0
# Kubernetes' preStop pause: endpoints drop the pod, then it gets SIGTERM.
PRE_STOP_SECONDS = 1.5
SETTLE_SECONDS = 1.0
AFTER_SECONDS = 2.0
# `todo-api serve` waits up to 30 s for requests in flight (GRACEFUL_SHUTDOWN_SECONDS).
STOP_TIMEOUT = 40.0
START_TIMEOUT = 30.0
CATCH_UP_SECONDS = 15.0
BACKEND = "replicas"

HAPROXY_CONFIG = """\
global
    maxconn 4096
    stats socket {socket} mode 600 level admin
    log stdout format raw local0

defaults
    mode http
    log global
    option httplog
    option forwardfor
    timeout connect 2s
    timeout client 1h
    timeout server 1h
    timeout tunnel 1h
    timeout http-request 10s
    timeout http-keep-alive 30s
    timeout queue 10s
    timeout check 2s
    # A connection refused (a process gone before the check notices) is tried again on
    # another server: nothing of the request was sent, so even a POST is safe to retry.
    retries 3
    option redispatch 1
    retry-on conn-failure

frontend api
    bind 127.0.0.1:{port}
    default_backend {backend}

backend {backend}
    balance roundrobin
    option httpchk
    http-check send meth GET uri /api/health/ready
    http-check expect status 200
    default-server check inter 500 fastinter 500 downinter 500 fall 2 rise 2
{servers}
"""


@dataclass
class Phase:
    """What the clients saw during one part of the run."""

    name: str
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    # Acknowledged creates (201): task id -> title.
    acked: dict[int, str] = field(default_factory=dict)
    # Creates that got no 201: they may or may not have been stored.
    unanswered: set[str] = field(default_factory=set)
    slowest: float = 0.0
    # Requests of this phase not answered yet.
    in_flight: int = 0


class Phases:
    def __init__(self, *names: str) -> None:
        self.lock = threading.Lock()
        self.all = {name: Phase(name) for name in names}
        self.current = self.all[names[0]]

    def switch(self, name: str) -> None:
        """From now on requests count in `name`; returns once the previous phase's requests
        are all answered, so that none of them sees what the next phase does."""
        with self.lock:
            previous, self.current = self.current, self.all[name]
        deadline = time.monotonic() + 30
        while previous.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)

    def acked(self) -> dict[int, str]:
        with self.lock:
            return {i: t for phase in self.all.values() for i, t in phase.acked.items()}


class Load:
    """Client threads through the balancer: each creates a task with a unique title and reads
    it back, again and again, counting every request and every failure."""

    def __init__(self, base: str, headers: dict[str, str], phases: Phases, run: str) -> None:
        self.base = base
        self.headers = headers
        self.phases = phases
        self.run = run
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(LOAD_THREADS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _work(self, n: int) -> None:
        with httpx2.Client(base_url=self.base, headers=self.headers, timeout=20) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                title = f"rollout {self.run} {n}-{i}"
                phase, created = self._request(client, "POST", "/tasks", 201, {"title": title})
                with self.phases.lock:
                    if created is None:
                        phase.unanswered.add(title)
                        continue
                    task_id = created.json()["id"]
                    phase.acked[task_id] = title
                phase, read = self._request(client, "GET", f"/tasks/{task_id}", 200)
                if read is not None and read.json().get("title") != title:
                    with self.phases.lock:
                        phase.failures.append(f"GET /tasks/{task_id}: another title")
                self.stop.wait(THINK_SECONDS)

    def _request(
        self,
        client: httpx2.Client,
        method: str,
        path: str,
        expected: int,
        body: dict[str, Any] | None = None,
    ) -> tuple[Phase, httpx2.Response | None]:
        """The phase the request counts in (the one current when it was sent), and its
        answer if it had the expected status."""
        route = "/tasks" if method == "POST" else "/tasks/{id}"
        with self.phases.lock:
            phase = self.phases.current
            phase.in_flight += 1
        began = time.monotonic()
        answer: httpx2.Response | None = None
        try:
            answer = client.request(method, path, json=body)
            failure = f"{method} {route}: {answer.status_code} {answer.text[:120]!r}"
        except httpx2.HTTPError as exc:
            failure = f"{method} {route}: {type(exc).__name__}: {exc}"
        took = time.monotonic() - began
        ok = answer is not None and answer.status_code == expected
        with self.phases.lock:
            phase.in_flight -= 1
            phase.requests += 1
            phase.slowest = max(phase.slowest, took)
            if not ok:
                phase.failures.append(f"{clock()} {failure}")
        return phase, answer if ok else None


class Stream(threading.Thread):
    """One client's event stream through the balancer: when it ends (its process stops) or
    breaks (its process dies), it opens again at once with the last id it got as
    Last-Event-ID, as EventSource does."""

    def __init__(self, n: int, url: str, headers: dict[str, str], phases: Phases) -> None:
        super().__init__(daemon=True, name=f"stream-{n}")
        self.n = n
        self.url = url
        self.headers = headers
        self.phases = phases
        self.stop = threading.Event()
        self.opened = threading.Event()
        self.last_id: str | None = None
        self.event_ids: set[str] = set()
        self.seen: set[int] = set()
        self.duplicates = 0
        self.opens = 0
        self.ended = 0
        self.broken = 0
        self.resets = 0
        self.lock = threading.Lock()

    @property
    def reconnects(self) -> int:
        return max(self.opens - 1, 0)

    def run(self) -> None:
        while not self.stop.is_set():
            headers = dict(self.headers)
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            with self.phases.lock:
                phase = self.phases.current
                phase.in_flight += 1
            try:
                reader = EventReader(self.url, headers)
            except (OSError, ValueError, IndexError) as exc:
                self._failed(phase, f"{type(exc).__name__}: {exc}")
                continue
            try:
                if reader.status != 200:
                    reader.ended.wait(5)
                    self._failed(phase, f"{reader.status} {reader.body[:120]!r}")
                    continue
                with self.phases.lock:
                    phase.in_flight -= 1
                    phase.requests += 1
                self.opens += 1
                self.opened.set()
                self._follow(reader)
            finally:
                reader.close()

    def _failed(self, phase: Phase, why: str) -> None:
        with self.phases.lock:
            phase.in_flight -= 1
            phase.requests += 1
            phase.failures.append(f"{clock()} GET /tasks/events (stream {self.n}): {why}")
        self.stop.wait(0.2)

    def _follow(self, reader: EventReader) -> None:
        while not self.stop.is_set():
            try:
                event = reader.next(timeout=0.5)
            except queue.Empty:
                continue
            except EOFError:
                if reader.broken is None:
                    self.ended += 1
                else:
                    self.broken += 1
                return
            if event.event == "reset":
                # Past the feed's retention: cannot happen on a fresh database, and would
                # lose the resumption this checks.
                self.resets += 1
                self.last_id = None
                continue
            if event.event != "change" or event.id is None:
                continue
            change = event.json()
            with self.lock:
                if event.id in self.event_ids:
                    self.duplicates += 1
                self.event_ids.add(event.id)
                if change["op"] == "upsert":
                    self.seen.add(change["task"]["id"])
            self.last_id = event.id

    def missing(self, acked: set[int]) -> set[int]:
        with self.lock:
            return acked - self.seen


class Replica:
    """`todo-api serve --workers 1` on a port of its own, started again on the same port."""

    def __init__(self, name: str, port: int, env: dict[str, str], logs: Path) -> None:
        self.name = name
        self.port = port
        self.env = env
        self.logs = logs
        self.generation = 0
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        self.generation += 1
        log = self.logs / f"{self.name}.{self.generation}.log"
        command = [sys.executable, "-m", "todo_api", "serve", "--port", str(self.port)]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--workers", "1"],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )

    def wait_ready(self) -> float:
        """Seconds until its own readiness check answers 200."""
        assert self.process is not None
        began = time.monotonic()
        while time.monotonic() - began < START_TIMEOUT:
            if self.process.poll() is not None:
                self.show_log()
                raise SystemExit(f"{self.name} exited with {self.process.returncode}")
            with contextlib.suppress(httpx2.TransportError):
                if httpx2.get(f"{self.base}/health/ready", timeout=2).status_code == 200:
                    return time.monotonic() - began
            time.sleep(0.05)
        self.show_log()
        raise SystemExit(f"{self.name} was not ready within {START_TIMEOUT:.0f} s")

    def show_log(self) -> None:
        log = self.logs / f"{self.name}.{self.generation}.log"
        lines = log.read_text(errors="replace").splitlines()[-30:]
        print(f"-- last lines of {self.name} (start {self.generation}):", *lines, sep="\n")


class HAProxy:
    def __init__(self, directory: Path, replicas: list[Replica]) -> None:
        self.port = free_port()
        self.socket = directory / "admin.sock"
        self.config = directory / "haproxy.cfg"
        self.log = directory / "haproxy.log"
        servers = "\n".join(f"    server {r.name} 127.0.0.1:{r.port}" for r in replicas)
        self.config.write_text(
            HAPROXY_CONFIG.format(
                socket=self.socket, port=self.port, backend=BACKEND, servers=servers
            )
        )
        self.names = [r.name for r in replicas]
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def start(self) -> None:
        check = subprocess.run(
            ["haproxy", "-c", "-q", "-f", str(self.config)], capture_output=True, text=True
        )
        if check.returncode != 0:
            raise SystemExit(f"haproxy refuses the configuration:\n{check.stderr}")
        with self.log.open("wb") as out:
            # -db: in the foreground, so that this process owns it and stops it by its PID.
            self.process = subprocess.Popen(
                ["haproxy", "-db", "-f", str(self.config)], stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 10
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                print(self.log.read_text(errors="replace"))
                raise SystemExit("haproxy did not start")
            time.sleep(0.05)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def admin(self, command: str) -> str:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(str(self.socket))
            sock.sendall(command.encode() + b"\n")
            answer = b""
            while chunk := sock.recv(65536):
                answer += chunk
        return answer.decode()

    def set_state(self, name: str, state: str) -> None:
        answer = self.admin(f"set server {BACKEND}/{name} state {state}").strip()
        if answer:
            raise SystemExit(f"haproxy: set server {name} state {state}: {answer}")

    def status(self) -> dict[str, str]:
        """Each server's status as HAProxy sees it: UP, DOWN, DRAIN, MAINT, `UP 1/2`..."""
        text = self.admin("show stat").lstrip("# ")
        rows = csv.DictReader(line for line in text.splitlines() if line)
        return {
            row["svname"]: row["status"]
            for row in rows
            if row["pxname"] == BACKEND and row["svname"] in self.names
        }

    def wait_status(self, name: str, wanted: str, seconds: float = 15) -> float:
        began = time.monotonic()
        while time.monotonic() - began < seconds:
            if self.status().get(name) == wanted:
                return time.monotonic() - began
            time.sleep(0.05)
        raise SystemExit(f"haproxy still sees {name} as {self.status().get(name)}, not {wanted}")


@dataclass
class Restart:
    replica: str
    stop_seconds: float
    exit_code: int | None
    ready_seconds: float
    up_seconds: float
    total_seconds: float


def stop_all(replicas: list[Replica]) -> None:
    """SIGTERM to every replica still running, then SIGKILL to any not gone within 10 s."""
    running = [r.process for r in replicas if r.process is not None and r.process.poll() is None]
    for process in running:
        process.terminate()
    for process in running:
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def step(title: str) -> None:
    print(f"== rollout: {title}", flush=True)


def clock() -> str:
    now = time.time()
    return f"[{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now * 1000) % 1000:03d}]"


def note(title: str) -> None:
    print(f"{clock()} {title}", flush=True)


def install_haproxy() -> bool:
    if shutil.which("haproxy"):
        return True
    if os.geteuid() == 0 and shutil.which("apt-get"):
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (["update", "-q"], ["install", "-y", "-q", "haproxy"]):
            subprocess.run(["apt-get", *command], check=False, env=env, stdout=subprocess.DEVNULL)
    return shutil.which("haproxy") is not None


def migrate(env: dict[str, str]) -> None:
    command = [sys.executable, "-m", "todo_api", "db", "upgrade"]
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise SystemExit(f"db upgrade failed:\n{done.stdout}{done.stderr}")


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
