"""The load and what it needs: wrk (tests/perf/load.lua) against one server, the servers'
environment, the users' tokens, and PostgreSQL up."""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from mcp_types.version import LATEST_HANDSHAKE_VERSION

from tests.perf.seed import Owner
from tests.perf.servers import ROOT, cpu_seconds, served, wait_until_idle
from todo_api.auth.authenticator import Expected, mint_token

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "load.lua"
SECRET = secrets.token_urlsafe(32)
# Far above any load the benchmark makes: the limits' cost is measured, never their refusals.
UNLIMITED = str(10**9)


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
        """One wrk run: throughput, latency percentiles (ms) and every error counted (answers
        that are not 2xx, a tool error or a chat turn whose tool failed, socket errors)."""
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
            LATEST_HANDSHAKE_VERSION,
        ]
        server = served(base)
        replaced_before = server.replaced_workers()
        cpu_before = cpu_seconds(base)
        finished = subprocess.run(
            command, capture_output=True, text=True, timeout=seconds + 60, check=False
        )
        line = next(
            (ln for ln in finished.stdout.splitlines() if ln.startswith("PERF-RESULT ")), None
        )
        if finished.returncode != 0 or line is None:
            server.check()
            raise RuntimeError(f"wrk failed: {finished.stderr or finished.stdout}")
        raw = json.loads(line.removeprefix("PERF-RESULT "))
        # The requests still in flight when wrk stopped are served all the same (a server does
        # not cancel one whose client left): their CPU is counted with them, up to idle.
        wait_until_idle(base)
        cpu = cpu_seconds(base) - cpu_before
        errors = raw["non2xx"] + raw["failed"] + sum(raw["errors"].values())
        latency = {key: round(value / 1000, 2) for key, value in raw["latency_us"].items()}
        result = {
            "scenario": scenario,
            "connections": connections,
            "seconds": round(raw["duration_us"] / 1e6, 2),
            "requests": raw["requests"],
            "rps": round(raw["requests"] / (raw["duration_us"] / 1e6), 1),
            "latency_ms": latency,
            # Server CPU per request: what others' load on a shared machine disturbs least.
            "cpu_ms_per_request": round(1000 * cpu / max(raw["sent"], 1), 3),
            "sent": raw["sent"],
            "errors": errors,
            "non2xx": raw["non2xx"],
            # 2xx answers that were no success: a tool error, a chat turn whose tool failed.
            "failed": raw["failed"],
            "statuses": raw["statuses"],
            "socket_errors": raw["errors"],
        }
        if replaced := server.replaced_workers() - replaced_before:
            result["workers_replaced"] = replaced
        return result


def server_env(url: str, *, redis: bool, model_url: str | None = None) -> dict[str, str]:
    """The servers' environment: deployed settings, with every limit far above the load.
    With `model_url`, chat talks to the fake model there."""
    env = dict(os.environ)
    env.pop("REDIS_URL", None)
    env |= {
        "DATABASE_URL": url,
        "BETTER_AUTH_SECRET": SECRET,
        "AUTO_MIGRATE": "false",
        "RATE_LIMIT_ENABLED": "true",
        "RATE_LIMIT_PER_USER": UNLIMITED,
        "RATE_LIMIT_PER_ADDRESS": UNLIMITED,
        "TASK_QUOTA": str(10**8),
        "PYTHONPATH": str(ROOT),
    }
    if model_url is not None:
        from tests.fake_openai import API_KEY, MODEL

        env |= {
            "OPENAI_BASE_URL": model_url,
            "OPENAI_API_KEY": API_KEY,
            "CHAT_MODEL": MODEL,
            "CHAT_RATE_LIMIT_PER_USER": UNLIMITED,
            "CHAT_CONVERSATION_QUOTA": UNLIMITED,
            "CHAT_MESSAGE_QUOTA": UNLIMITED,
        }
    if redis:
        env["REDIS_URL"] = "redis://127.0.0.1:6379/14"
    return env


def users_file(path: Path, owners: list[Owner]) -> Path:
    """One line a user for load.lua: a token, the first and last task id, the deep cursor."""
    lines = []
    for owner in owners:
        token = mint_token(SECRET, owner.user_id, dt.timedelta(hours=12), Expected())
        lines.append(f"{token} {owner.first_id} {owner.last_id} {owner.deep_cursor or 'none'}\n")
    path.write_text("".join(lines))
    return path


def find_wrk() -> str:
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


def ensure_postgres(url: str) -> None:
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
