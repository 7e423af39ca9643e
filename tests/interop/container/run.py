"""The image as deployed, as CI checks it: `python -m tests.interop.container.run`.

Builds the top-level Dockerfile with Podman (its `debian:trixie-slim` base made from Debian's
own archive with mmdebstrap, since no image registry answers here), validates compose.yaml
with docker-compose, then runs two containers of the image against this machine's PostgreSQL
and Redis and checks: the HEALTHCHECK turns healthy; a task is created, read and deleted
through each; the per-user rate limit is one count across both; the process is not root; and
SIGTERM stops a container within 10 s without losing the request it is answering. Prints the
image's size and build time. Exits non-zero on any failure; where Podman cannot run at all it
says why and exits 0.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx2

from tests.databases import fresh_postgres
from tests.network import free_port
from todo_api.auth.authenticator import Expected, mint_token

ROOT = Path(__file__).resolve().parents[3]
IMAGE = "localhost/todo-api:ci"
BASE = "docker.io/library/debian:trixie-slim"
TOOLS = {"podman": "podman", "mmdebstrap": "mmdebstrap", "runc": "runc"}
TOOLS["docker-compose"] = "docker-compose"
MAX_IMAGE_BYTES = 250 * 1000 * 1000
# As debian:trixie-slim is made: no manuals, locales or docs but the copyrights.
SLIM = [
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-include=/usr/share/locale/locale.alias",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/info/*",
]
# This machine's container runtime: runc without systemd, and limits it may set.
RUN = ["podman", "--runtime", "runc", "--cgroup-manager=cgroupfs"]
LIMITS = ["--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"]
# The host's network (its PostgreSQL and Redis), and a read-only root: the image writes nothing
# but to its own /tmp.
SANDBOX = ["--network=host", *LIMITS, "--read-only", "--tmpfs", "/tmp"]  # noqa: S108
PER_USER = 6


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.interop.container.run")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    args = parser.parse_args(argv)
    missing = _install_tools()
    if missing:
        print(f"container check SKIPPED: cannot install {', '.join(missing)} here", flush=True)
        return 0
    step("compose.yaml is a valid compose file")
    _validate_compose()
    step("the base image, from Debian's archive")
    _base_image()
    step("the image, from the Dockerfile")
    started = time.monotonic()
    cert = os.environ.get("PIP_CERT") or "/etc/ssl/certs/ca-certificates.crt"
    build = [*RUN, "build", "--format", "docker", "--isolation=chroot", "-t", IMAGE]
    if Path(cert).is_file():
        # This machine reaches the package index through a proxy with a CA of its own.
        build += ["-v", f"{cert}:/run/host-ca.crt:ro", "--build-arg", "PIP_CERT=/run/host-ca.crt"]
    subprocess.run([*build, str(ROOT)], check=True, stdout=subprocess.DEVNULL)
    seconds = time.monotonic() - started
    size = int(_podman("image", "inspect", "--format", "{{.Size}}", IMAGE))
    print(f"image {IMAGE}: {size / 1e6:.0f} MB, built in {seconds:.0f} s", flush=True)
    check(size < MAX_IMAGE_BYTES, f"the image is {size / 1e6:.0f} MB, over 250 MB")
    secret = secrets.token_urlsafe(40)
    with (
        fresh_postgres(args.postgres) as database,
        containers(database, args.redis, secret) as (
            first,
            second,
        ),
    ):
        step("both containers report healthy")
        for container in (first, second):
            wait_healthy(container.name)
        step("a task is created, read and deleted through each")
        for container in (first, second):
            crud(container, secret)
        step("the per-user rate limit is one count across both")
        shared_limit(first, second, secret)
        step("the server process is not root")
        for container in (first, second):
            uid = _podman("exec", container.name, "python3", "-c", "import os; print(os.getuid())")
            check(uid.strip() != "0", f"{container.name} runs as root")
        step("SIGTERM stops a container within 10 s, and the request in flight is answered")
        graceful_stop(first, second, secret)
    print("container check: ok", flush=True)
    return 0


def step(title: str) -> None:
    print(f"== container: {title}", flush=True)


def check(condition: bool, failure: str) -> None:
    if not condition:
        raise SystemExit(f"container check FAILED: {failure}")


def _install_tools() -> list[str]:
    missing = [package for tool, package in TOOLS.items() if not shutil.which(tool)]
    if missing and os.geteuid() == 0 and shutil.which("apt-get"):
        quiet = {"stdout": subprocess.DEVNULL}
        subprocess.run(["apt-get", "update", "-q"], check=False, **quiet)
        subprocess.run(["apt-get", "install", "-y", "-q", *missing], check=False, **quiet)
        missing = [package for tool, package in TOOLS.items() if not shutil.which(tool)]
    return missing


def _podman(*args: str) -> str:
    return subprocess.run(
        [*RUN, *args], check=True, capture_output=True, text=True, timeout=120
    ).stdout


def _validate_compose() -> None:
    # Its `.env` as docs/deploying.md has it made; docker-compose checks the file without a daemon.
    with tempfile.TemporaryDirectory() as directory:
        shutil.copy(ROOT / "compose.yaml", directory)
        env = (ROOT / ".env.example").read_text()
        secret = secrets.token_urlsafe(40)
        filled = f"\nBETTER_AUTH_SECRET={secret}\nPOSTGRES_PASSWORD={secrets.token_hex(12)}\n"
        Path(directory, ".env").write_text(env + filled)
        subprocess.run(
            ["docker-compose", "-f", "compose.yaml", "config", "-q"], cwd=directory, check=True
        )


def _base_image() -> None:
    if subprocess.run([*RUN, "image", "exists", BASE], check=False).returncode == 0:
        return
    with tempfile.TemporaryDirectory() as directory:
        tarball = Path(directory) / "base.tar"
        command = ["mmdebstrap", "--quiet", "--variant=minbase", *SLIM, "trixie", str(tarball)]
        subprocess.run(command, check=True)
        subprocess.run([*RUN, "import", str(tarball), BASE], check=True, stdout=subprocess.DEVNULL)


class Container:
    def __init__(self, name: str, port: int) -> None:
        self.name = name
        self.port = port
        self.base = f"http://127.0.0.1:{port}/api"


@contextlib.contextmanager
def containers(database: str, redis: str, secret: str) -> Iterator[tuple[Container, Container]]:
    run = uuid.uuid4().hex[:8]
    started = [Container(f"todo-api-ci-{run}-{n}", free_port()) for n in (1, 2)]
    step("migrations as a one-shot container")
    upgraded = _podman(
        "run", "--rm", *SANDBOX, f"--env=DATABASE_URL={database}", IMAGE, "db", "upgrade"
    )
    check(upgraded.strip() == "database is up to date", f"db upgrade said {upgraded!r}")
    try:
        # One that would migrate as it starts (nothing is left to do), one that never does.
        for container, processes, migrate in zip(
            started, ("1", "2"), ("true", "false"), strict=True
        ):
            env = {
                "DATABASE_URL": database,
                "BETTER_AUTH_SECRET": secret,
                "AUTO_MIGRATE": migrate,
                "PORT": str(container.port),
                "WEB_CONCURRENCY": processes,
                "REDIS_URL": redis,
                "RATE_LIMIT_PER_USER": str(PER_USER),
                "RATE_LIMIT_WINDOW": "86400",
            }
            flags = [f"--env={name}={value}" for name, value in env.items()]
            _podman("run", "-d", "--name", container.name, *SANDBOX, *flags, IMAGE)
        yield started[0], started[1]
    finally:
        for container in started:
            subprocess.run([*RUN, "logs", container.name], check=False)
            subprocess.run(
                [*RUN, "rm", "-f", "-t", "0", container.name],
                check=False,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )


def wait_healthy(name: str, seconds: float = 60) -> None:
    """Runs the image's own HEALTHCHECK (Podman schedules it with systemd, absent here)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        ran = subprocess.run(
            [*RUN, "healthcheck", "run", name], check=False, capture_output=True, text=True
        )
        if ran.returncode == 0:
            status = _podman("inspect", "--format", "{{.State.Health.Status}}", name).strip()
            check(status == "healthy", f"{name} is {status!r} after a passing check")
            return
        time.sleep(1)
    raise SystemExit(f"container check FAILED: {name} never turned healthy")


def token(secret: str, user: str) -> dict[str, str]:
    minted = mint_token(secret, user, dt.timedelta(minutes=10), Expected())
    return {"Authorization": f"Bearer {minted}"}


def crud(container: Container, secret: str) -> None:
    user = token(secret, f"crud-{uuid.uuid4().hex[:8]}")
    created = httpx2.post(f"{container.base}/tasks", json={"title": "in a box"}, headers=user)
    check(created.status_code == 201, f"create on {container.name}: {created.status_code}")
    url = f"{container.base}/tasks/{created.json()['id']}"
    read = httpx2.get(url, headers=user)
    check(read.status_code == 200, f"read on {container.name}: {read.status_code}")
    check(read.json()["title"] == "in a box", f"read on {container.name}: {read.text}")
    gone = httpx2.delete(url, headers=user)
    check(gone.status_code == 204, f"delete on {container.name}: {gone.status_code}")
    check(httpx2.get(url, headers=user).status_code == 404, f"{container.name} kept the task")


def shared_limit(first: Container, second: Container, secret: str) -> None:
    user = token(secret, f"limited-{uuid.uuid4().hex[:8]}")
    statuses = [
        httpx2.get(f"{container.base}/tasks", headers=user).status_code
        for container in (first, second) * (PER_USER // 2)
    ]
    check(statuses == [200] * PER_USER, f"within the limit: {statuses}")
    over = [httpx2.get(f"{c.base}/tasks", headers=user).status_code for c in (first, second)]
    check(over == [429, 429], f"past the limit counted on both: {over}")


def graceful_stop(first: Container, second: Container, secret: str) -> None:
    """A create whose body is still arriving when SIGTERM comes must be answered (201) and
    stored; the container must then stop within 10 s."""
    user = token(secret, f"stop-{uuid.uuid4().hex[:8]}")
    body = json.dumps({"title": "sent across a stop"}).encode()
    head = (
        f"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {user['Authorization']}"
        f"\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()
    stop_seconds: list[float] = []

    def stop() -> None:
        began = time.monotonic()
        subprocess.run([*RUN, "stop", "-t", "10", first.name], check=True, capture_output=True)
        stop_seconds.append(time.monotonic() - began)

    with socket.create_connection(("127.0.0.1", first.port), timeout=15) as sock:
        sock.sendall(head + body[:5])
        time.sleep(0.5)
        stopping = threading.Thread(target=stop)
        stopping.start()
        time.sleep(1.5)  # SIGTERM has arrived; the server waits for this request
        sock.sendall(body[5:])
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
        stopping.join(timeout=30)
    status = answer.split(b" ", 2)[1] if answer else b"nothing"
    check(status == b"201", f"the request in flight got {status!r}")
    check(bool(stop_seconds) and stop_seconds[0] < 10, f"stopping took {stop_seconds} s")
    code = _podman("inspect", "--format", "{{.State.ExitCode}}", first.name).strip()
    check(code == "0", f"the stopped container exited with {code}")
    listed = httpx2.get(f"{second.base}/tasks", headers=user).json()
    check(
        [task["title"] for task in listed] == ["sent across a stop"],
        f"the task is not stored: {listed}",
    )
    print(f"stopped in {stop_seconds[0]:.1f} s with the request answered", flush=True)


if __name__ == "__main__":
    sys.exit(main())
