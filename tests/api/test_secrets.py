"""`todo-api serve` refuses a shared secret anyone could guess, rather than warn about it, and
`todo-api token` refuses to sign with one, in the same words."""

from __future__ import annotations

import os
import re
import secrets
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.network import TODO_API, free_port
from todo_api.secret_strength import weak_secret

ROOT = Path(__file__).resolve().parents[2]
PLACEHOLDER = "replace-with-at-least-32-random-characters"


def serve(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, "serve", "--port", str(free_port()), *args, **env)


def token(cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return run(cwd, "token", "alice", **env)


def run(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    names = ("BETTER_AUTH_SECRET", "BETTER_AUTH_URL", "DATABASE_URL", "NEON_DB_URL")
    clean = {k: v for k, v in os.environ.items() if k not in names}
    return subprocess.run(
        [TODO_API, *args],
        cwd=cwd,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def assert_refused(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("todo-api: BETTER_AUTH_SECRET")
    assert "openssl rand -base64 32" in lines[0]


GUESSABLE = [
    PLACEHOLDER,
    "short-but-random-Xq9",  # under 32 bytes
    "a" * 48,  # one character repeated
    "Ab1!" * 10,  # a pattern repeated
    "MyTodoAppSecretKeyThatIsLongEnough2026",  # a dictionary word
    "correct-horse-battery-password-staple",
]


@pytest.mark.parametrize("secret", GUESSABLE)
def test_serve_refuses_a_guessable_secret(tmp_path: Path, secret: str) -> None:
    assert_refused(serve(tmp_path, BETTER_AUTH_SECRET=secret))


@pytest.mark.parametrize("secret", GUESSABLE)
def test_token_refuses_to_sign_with_a_secret_serve_refuses_in_the_same_line(
    tmp_path: Path, secret: str
) -> None:
    minted = token(tmp_path, BETTER_AUTH_SECRET=secret)
    assert_refused(minted)
    assert minted.stdout == ""
    assert minted.stderr == serve(tmp_path, BETTER_AUTH_SECRET=secret).stderr


def test_serve_refuses_a_copied_env_example(tmp_path: Path) -> None:
    shutil.copy(ROOT / ".env.example", tmp_path / ".env")
    assert_refused(serve(tmp_path))
    assert_refused(serve(tmp_path, "--dev"))  # --dev only makes a secret up when none is set
    assert_refused(token(tmp_path))


@pytest.mark.parametrize("secret", [secrets.token_urlsafe(32), secrets.token_hex(32)])
def test_generated_secrets_are_accepted(secret: str) -> None:
    assert weak_secret(secret) is None


def test_every_secret_the_project_ships_is_refused() -> None:
    pages = sorted(ROOT.glob("docs/**/*.md"))
    assert pages, "no docs/ pages found"
    shipped = set()
    for path in (ROOT / ".env.example", ROOT / "README.md", *pages):
        shipped |= set(re.findall(r"BETTER_AUTH_SECRET=([^\s`'\"]+)", path.read_text()))
    assert PLACEHOLDER in shipped
    for secret in shipped:
        assert weak_secret(secret) is not None, secret
