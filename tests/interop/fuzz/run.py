"""Schemathesis against the live server, as CI runs it:
`python -m tests.interop.fuzz.run [--postgres URL]`.

First as user A with every check, mode and phase (links make the stateful phase walk create,
update, complete and delete); then as user B aimed at A's path and task (BOLA), where every
answer must be 403 or 404 and A's tasks must be unchanged afterwards. Exits non-zero on any
failure.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import httpx2

from tests.databases import fresh_postgres
from tests.fake_openai import API_KEY, MODEL, FakeOpenAI, serve_fake_openai
from tests.network import running_server
from todo_api.auth.authenticator import Expected, mint_token

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent
BIN = Path(sys.executable).parent


@contextlib.contextmanager
def database(postgres: str | None) -> Iterator[str]:
    if postgres:
        with fresh_postgres(postgres) as url:
            yield url
    else:
        with tempfile.TemporaryDirectory() as directory:
            yield f"sqlite:///{directory}/fuzz.db"


@contextlib.contextmanager
def server(database_url: str, secret: str, model: FakeOpenAI) -> Iterator[str]:
    env = {**os.environ, "DATABASE_URL": database_url, "BETTER_AUTH_SECRET": secret}
    # The chat operations answer for real, on a scripted model on loopback; their bounds are
    # above the fuzzer's pace, as the rate limits are.
    env.update(OPENAI_API_KEY=API_KEY, OPENAI_BASE_URL=model.base_url, CHAT_MODEL=MODEL)
    env.update(CHAT_RATE_LIMIT_PER_USER="1000000", CHAT_CONVERSATION_QUOTA="100000")
    # Limits on as deployed, but above the fuzzer's pace: their headers are checked, not 429s.
    env.update(LOG_LEVEL="WARNING", RATE_LIMIT_PER_USER="1000000", RATE_LIMIT_PER_ADDRESS="1000000")
    # An event stream lasts until its token expires: here it ends at once, so that each case
    # of the stream operations gets its whole answer (the first events, then the end).
    env.update(STREAM_MAX_SECONDS="0.2")
    with running_server(env, ROOT) as base:
        yield base


def schemathesis(base: str, token: str, config: str, env: dict[str, str], *args: str) -> bool:
    command = [
        str(BIN / "schemathesis"),
        "--config-file",
        str(HERE / config),
        "run",
        # The contract as the server serves it, which clients and Swagger UI read too.
        f"{base}/openapi.json",
        "--url",
        base,
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        "all",
        "--request-timeout",
        "10",
        "--no-color",
        *args,
    ]
    hooks = {"SCHEMATHESIS_HOOKS": "tests.interop.fuzz.hooks", "PYTHONPATH": str(ROOT)}
    return subprocess.run(command, cwd=ROOT, env={**os.environ, **hooks, **env}).returncode == 0


def a_state(base: str, headers: dict[str, str], conversation: str) -> list[object]:
    """User A's tasks, conversations and the victim conversation's messages."""
    paths = ["tasks?limit=500", "conversations", f"conversations/{conversation}/messages"]
    return [httpx2.get(f"{base}/{path}", headers=headers).json() for path in paths]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--postgres", help="run on a fresh database on this PostgreSQL server")
    args = parser.parse_args()
    secret = secrets.token_urlsafe(48)
    alice, bob = (
        mint_token(secret, user, dt.timedelta(hours=1), Expected()) for user in ("alice", "bob")
    )
    with (
        serve_fake_openai() as model,
        database(args.postgres) as url,
        server(url, secret, model) as base,
    ):
        print(f"== schemathesis as user A on {url.split(':')[0]}", flush=True)
        passed = schemathesis(base, alice, "main.toml", {})
        print("== schemathesis as user A on the /{user_id}/tasks family", flush=True)
        passed &= schemathesis(
            base,
            alice,
            "user.toml",
            {"FUZZ_USER": "alice"},
            "--mode",
            "positive",
            "--include-path-regex",
            "^/\\{user_id\\}",
        )

        headers = {"Authorization": f"Bearer {alice}"}
        victim = httpx2.post(f"{base}/tasks", json={"title": "A's own"}, headers=headers).json()
        chat = httpx2.post(f"{base}/chat", json={"message": "A's own"}, headers=headers).json()
        before = a_state(base, headers, chat["conversation_id"])
        print(f"== schemathesis as user B against user A's task {victim['id']}", flush=True)
        env = {
            "FUZZ_VICTIM": "alice",
            "FUZZ_VICTIM_TASK_ID": str(victim["id"]),
            "FUZZ_VICTIM_CONVERSATION_ID": chat["conversation_id"],
        }
        passed &= schemathesis(
            base,
            bob,
            "bola.toml",
            env,
            "--mode",
            "positive",
            "--phases",
            "examples,coverage,fuzzing",
        )
        if a_state(base, headers, chat["conversation_id"]) != before:
            print("BOLA: user A's tasks or chat changed while user B was testing", flush=True)
            passed = False
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
