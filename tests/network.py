"""Loopback ports and live servers for the tests that run real processes."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import time

import httpx2


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
