"""Loopback ports and live servers for the tests that run real processes."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, Any

import httpx2
import uvicorn

TODO_API = str(Path(sys.executable).parent / "todo-api")


def free_port() -> int:
    """A loopback port nothing listens on (at the moment of asking)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_until_healthy(base: str, process: subprocess.Popen, seconds: float = 30) -> None:
    """Wait for `{base}/health` to answer 200; fail if the process exits or time runs out."""
    deadline = time.monotonic() + seconds
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with {process.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        with contextlib.suppress(httpx2.TransportError):
            if httpx2.get(f"{base}/health").status_code == 200:
                return
        time.sleep(0.1)


@contextlib.contextmanager
def serving(
    env: Mapping[str, str],
    cwd: Path | str,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
    args: Sequence[str] = (),
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """`todo-api serve [args]` on a free loopback port: its API base URL and its process."""
    port = free_port()
    process = subprocess.Popen(
        [TODO_API, "serve", "--port", str(port), *args],
        cwd=cwd,
        env=dict(env),
        stdout=stdout,
        stderr=stderr,
    )
    base = f"http://127.0.0.1:{port}/api"
    try:
        wait_until_healthy(base, process)
        yield base, process
    finally:
        process.terminate()
        process.wait(timeout=30)


@contextlib.contextmanager
def running_server(
    env: Mapping[str, str],
    cwd: Path | str,
    stdout: IO[Any] | int | None = None,
    stderr: IO[Any] | int | None = None,
) -> Iterator[str]:
    """`todo-api serve` on a free loopback port; yields its API base URL, stops it after."""
    with serving(env, cwd, stdout, stderr) as (base, _process):
        yield base


@contextlib.contextmanager
def in_a_thread(app: Any, port: int | None = None, **config: Any) -> Iterator[int]:
    """`app` served by uvicorn in a daemon thread on `port` (a free loopback port unless
    given), with uvicorn's `config`: the port, once it listens; stopped after."""
    port = port or free_port()
    server = uvicorn.Server(uvicorn.Config(app, port=port, log_level="warning", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(timeout=30)
