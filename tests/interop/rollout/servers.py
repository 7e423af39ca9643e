"""The rolling restart's servers (tests/interop/rollout/run.py): `todo-api serve` processes and
HAProxy in front of them, drained and readied through its admin socket."""

from __future__ import annotations

import contextlib
import csv
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx2

from tests.network import free_port

ROOT = Path(__file__).resolve().parents[3]
BACKEND = "replicas"
START_TIMEOUT = 30.0


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
