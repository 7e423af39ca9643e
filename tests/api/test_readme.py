"""The README's curl tour runs as written against `todo-api serve` on a fresh database, and
shows the headers the README says it shows."""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
from pathlib import Path

from tests.conftest import SECRET
from tests.network import running_server
from todo_api.auth.authenticator import Expected, mint_token

README = Path(__file__).resolve().parents[2] / "README.md"


def tour() -> str:
    text = README.read_text(encoding="utf-8")
    start = text.index("Try it from another shell with curl")
    return re.search(r"```sh\n(.*?)```", text[start:], re.S)[1]  # type: ignore[index]


def test_the_curl_tour_creates_lists_updates_completes_and_deletes(tmp_path: Path) -> None:
    script = tour()
    assert "TOKEN=" in script
    assert "API=http://127.0.0.1:8000/api" in script
    env = {**os.environ, "BETTER_AUTH_SECRET": SECRET, "DATABASE_URL": f"sqlite:///{tmp_path}/q.db"}
    token = mint_token(SECRET, "demo-user", dt.timedelta(minutes=5), Expected())
    with running_server(env, tmp_path) as base:
        # The demo token and the port as this run has them; every line else as written.
        runnable = re.sub(r"(?m)^TOKEN=.*$", f"TOKEN={token}", script)
        runnable = runnable.replace("http://127.0.0.1:8000/api", base)
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", runnable],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "HTTP/1.1 201 Created" in out
    # The headers the tour talks about, as `curl -i` shows them: the create's version, and the
    # list's total and next page (two pending tasks, one a page).
    heads = out.lower()
    assert 'etag: "1-1"' in heads
    assert "location: /api/tasks/1" in heads
    assert "x-total-count: 2" in heads
    assert re.search(r'^link: </api/tasks\?[^>]*cursor=[^>]+>; rel="next"', heads, re.M)
    # Bodies are compact JSON (todo_api/web/json_bodies.py). Only the update, made with the
    # create's ETag as If-Match, sets priority high: a 412 would be problem+json.
    assert '"priority":"high"' in out
    assert '"due_date":"2026-12-24T17:00:00.000000Z"' in out
    assert '"completed":true' in out
    assert "HTTP/1.1 204 No Content" in out
    assert "problem+json" not in out
