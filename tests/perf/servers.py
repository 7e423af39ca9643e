"""The benchmark's processes: the servers it measures, where their CPU time and memory are
read (/proc), and why one of them is gone when it is.

A measured server that vanishes must stop the run with its cause (exit code or signal, the
OOM killer's count, the tail of its log) rather than with a failed read of /proc: the cause is
what the next run needs, and the figures so far are kept by the caller (run.py).
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.network import free_port, wait_until_healthy

ROOT = Path(__file__).resolve().parent.parent.parent
DEFAULT_POSTGRES = "postgresql://postgres@127.0.0.1:5432/test"
LOG_TAIL_LINES = 20
# The fake model (tests/fake_openai.py) in a process of its own, so that its CPU is not the
# benchmark's; it prints its base URL and serves until its stdin closes.
SERVE_MODEL = (
    "import sys\n"
    "from tests.fake_openai import serve_fake_openai\n"
    "with serve_fake_openai() as fake:\n"
    "    print(fake.base_url, flush=True)\n"
    "    sys.stdin.read()\n"
)


class ServerExited(RuntimeError):
    """A server the run measures is gone; the message says why, as far as can be told."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.details = server.exit_details()
        super().__init__(exit_message(self.details))


@dataclass
class Server:
    """One process the run started, serving `base`, logging to `log`."""

    name: str
    base: str
    process: subprocess.Popen[bytes]
    log: Path
    oom_kills_at_start: int | None = field(default_factory=lambda: oom_kills())
    # Set when the run stops it at the end of its block: a read after that is the run's bug.
    stopped: bool = False
    workers_seen: set[int] = field(default_factory=set)

    def check(self) -> None:
        """Raise if the process is no longer there to be measured."""
        if self.stopped:
            raise RuntimeError(
                f"{self.name} at {self.base} was stopped by the run when its block ended: "
                "measuring it after that is a bug in the benchmark"
            )
        if self.process.poll() is not None:
            raise ServerExited(self)

    def replaced_workers(self) -> int:
        """Workers that have come and gone (a supervisor replaces one that dies)."""
        return max(len(self.workers_seen) - max(len(workers(self.base)), 1), 0)

    def exit_details(self) -> dict[str, Any]:
        code = self.process.returncode
        return {
            "name": self.name,
            "base": self.base,
            "pid": self.process.pid,
            "returncode": code,
            "cause": exit_cause(code),
            "oom": oom_finding(self.process.pid, code, self.oom_kills_at_start),
            "log": str(self.log),
            "log_tail": log_tail(self.log),
        }


_SERVED: dict[str, Server] = {}


def served(base: str) -> Server:
    """The live server at `base`, or an error that says why there is none."""
    server = _SERVED.get(base)
    if server is None:
        raise RuntimeError(f"no server of this run serves {base}")
    server.check()
    return server


def exit_cause(returncode: int | None) -> str:
    """A return code in words: a negative one is the signal that ended the process."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-returncode).name}"
        return f"killed by signal {-returncode}"
    return f"exited with code {returncode}"


def oom_kills() -> int | None:
    """The kernel's count of OOM kills since boot (/proc/vmstat), where it is readable."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/vmstat").read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "oom_kill":
                return int(value)
    return None


def oom_finding(pid: int, returncode: int | None, kills_before: int | None) -> str:
    """Whether the kernel's OOM killer ended `pid`, as far as this machine lets us tell: it
    kills with SIGKILL and counts each kill in /proc/vmstat; dmesg names the process, where a
    non-root user may read it."""
    if returncode != -signal.SIGKILL:
        return "no (the OOM killer sends SIGKILL)"
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        logged = subprocess.run(
            ["dmesg"], capture_output=True, text=True, timeout=5, check=False
        ).stdout
        if f"Killed process {pid} " in logged:
            return f"yes (dmesg: Killed process {pid})"
    kills = oom_kills()
    if kills is None or kills_before is None:
        return "unknown (neither dmesg nor /proc/vmstat says)"
    if kills == kills_before:
        return "no (no OOM kill on this machine since it started, by /proc/vmstat)"
    return (
        f"likely: {kills - kills_before} OOM kill(s) on this machine since it started "
        "(/proc/vmstat oom_kill), and dmesg could not name the process"
    )


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    with contextlib.suppress(OSError), path.open("rb") as log:
        log.seek(max(log.seek(0, os.SEEK_END) - 64 * 1024, 0))
        return b"\n".join(log.read().splitlines()[-lines:]).decode(errors="replace")
    return ""


def exit_message(details: dict[str, Any]) -> str:
    return (
        f"the server {details['name']} ({details['base']}, pid {details['pid']}) vanished: "
        f"{details['cause']}; OOM-killed: {details['oom']}. The last lines of its log "
        f"({details['log']}):\n{details['log_tail']}"
    )


def keep_logs(work: Path, destination: Path) -> Path | None:
    """Copy the servers' logs out of the run's temporary directory, which is deleted."""
    logs = sorted(work.glob("*.log"))
    if not logs:
        return None
    destination.mkdir(parents=True, exist_ok=True)
    for log in logs:
        shutil.copy2(log, destination / log.name)
    return destination


@contextlib.contextmanager
def started(
    commands: dict[str, tuple[list[str], int, dict[str, str]]], work: Path, workers: int
) -> Iterator[dict[str, str]]:
    """Each command, with its environment, listening on its port, until the block ends;
    a server that is found gone at the end fails the block."""
    servers: list[Server] = []
    try:
        for name, (command, port, env) in commands.items():
            log_path = work / f"{name}-{workers}.log"
            with log_path.open("ab") as log:
                process = subprocess.Popen(
                    [*command, "--workers", str(workers)], env=env, stdout=log, stderr=log, cwd=ROOT
                )
            base = f"http://127.0.0.1:{port}"
            servers.append(Server(name, base, process, log_path))
            _SERVED[base] = servers[-1]
        for server in servers:
            try:
                wait_until_healthy(f"{server.base}/api", server.process)
            except RuntimeError:
                server.check()
                raise
            server.workers_seen.update(workers_of(server))
        yield {server.name: server.base for server in servers}
        for server in servers:
            server.check()
    finally:
        for server in servers:
            server.stopped = True
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in servers:
            try:
                server.process.wait(timeout=40)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()


@contextlib.contextmanager
def measured(
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
    with started(
        {name: (command, ports[name], env) for name, command in commands.items()}, work, workers
    ) as bases:
        yield bases


@contextlib.contextmanager
def fake_model(work: Path) -> Iterator[str]:
    """The scripted fake of OpenAI's Chat Completions (tests/fake_openai.py), served by a
    process of its own: its base URL."""
    with (work / "fake-model.log").open("ab") as log:
        model = subprocess.Popen(
            [sys.executable, "-c", SERVE_MODEL],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            cwd=ROOT,
            env=dict(os.environ) | {"PYTHONPATH": str(ROOT)},
        )
    try:
        assert model.stdout is not None
        base_url = model.stdout.readline().decode().strip()
        if not base_url:
            raise RuntimeError(f"the fake model did not start: {exit_cause(model.wait(10))}")
        yield base_url
    finally:
        if model.poll() is None:
            model.terminate()
        model.wait(timeout=10)


def workers(base: str) -> list[int]:
    """The processes that serve `base`."""
    return workers_of(served(base))


def workers_of(server: Server) -> list[int]:
    pid = server.process.pid
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        # Gone between the check and the read: wait for it to be reaped, then say why.
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.process.wait(timeout=5)
        server.check()
        raise
    # With --workers N > 1, uvicorn's first process only supervises; the workers do the work
    # (its other child is multiprocessing's resource tracker).
    found = []
    for child in children:
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(int(child))
    server.workers_seen.update(found)
    return found or [pid]


def _stat(pid: int) -> list[str]:
    # The fields after the parenthesised command name: field N of /proc/PID/stat is [N - 3].
    return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()


def cpu_seconds(base: str) -> float:
    """User and system CPU time used so far by the processes serving `base`, including the
    workers that have exited (their time is the supervisor's children's time once reaped), so
    that the figure only grows when a worker is replaced."""
    server = served(base)
    pids = workers_of(server)
    ticks = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = _stat(pid)
            ticks += int(fields[11]) + int(fields[12])
    root = server.process.pid
    if pids != [root]:
        with contextlib.suppress(OSError):
            fields = _stat(root)
            ticks += int(fields[13]) + int(fields[14])
    return ticks / os.sysconf("SC_CLK_TCK")


def wait_until_idle(base: str, seconds: float = 10) -> None:
    """wrk stops sending, but the server still works off what it had accepted: wait until it
    has, or the next run measures this one's backlog."""
    deadline = time.monotonic() + seconds
    used = cpu_seconds(base)
    while time.monotonic() < deadline:
        time.sleep(0.15)
        now = cpu_seconds(base)
        if now - used < 0.015:
            return
        used = now


def rss(base: str) -> list[int]:
    """Resident memory (KiB) of each worker process serving `base`."""
    sizes = []
    for worker in workers(base):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{worker}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    sizes.append(int(line.split()[1]))
    return sizes
