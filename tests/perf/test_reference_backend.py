"""The benchmark's reference backend (tests/perf/reference.py) answers as the benchmark expects.

Needs a PostgreSQL server (TEST_DATABASE_URL): the reference maps the service's migrated
PostgreSQL `tasks` table, as the benchmark runs it.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.databases import fresh_postgres
from tests.network import free_port, wait_until_healthy
from todo_api.auth.authenticator import Expected, mint_token

pytestmark = pytest.mark.skipif(
    not os.environ.get("TEST_DATABASE_URL"), reason="needs PostgreSQL (TEST_DATABASE_URL)"
)

ROOT = Path(__file__).resolve().parent.parent.parent
SECRET = secrets.token_urlsafe(32)


@pytest.fixture(scope="module")
def reference() -> Iterator[str]:
    """The reference on a free port over a fresh, migrated database: its base URL."""
    with fresh_postgres(os.environ["TEST_DATABASE_URL"]) as url:
        env = dict(os.environ) | {
            "DATABASE_URL": url,
            "BETTER_AUTH_SECRET": SECRET,
            "PYTHONPATH": str(ROOT),
        }
        # Tokens from mint_token(..., Expected()) carry no issuer or audience.
        env.pop("JWT_ISSUER", None)
        env.pop("JWT_AUDIENCE", None)
        upgrade = [sys.executable, "-m", "todo_api", "db", "upgrade"]
        subprocess.run(upgrade, env=env, cwd=ROOT, check=True)
        port = free_port()
        command = [sys.executable, "-m", "tests.perf.reference", "--port", str(port)]
        process = subprocess.Popen([*command, "--workers", "1"], env=env, cwd=ROOT)
        base = f"http://127.0.0.1:{port}"
        try:
            wait_until_healthy(base, process)
            yield base
        finally:
            process.terminate()
            process.wait(timeout=30)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_create_list_get(reference: str) -> None:
    # A user of this test's own: the database is shared by the module's tests.
    lister = bearer(mint_token(SECRET, "lister", dt.timedelta(minutes=5), Expected()))
    with httpx2.Client(base_url=reference, headers=lister) as api:
        first = api.post("/api/tasks", json={"title": "first", "tags": ["a"]})
        assert first.status_code == 201, first.text
        second = api.post(
            "/api/tasks", json={"title": "second", "description": "d", "priority": "high"}
        )
        assert second.status_code == 201, second.text
        assert first.json() | {"id": 0, "created_at": "", "updated_at": ""} == {
            "id": 0,
            "user_id": "lister",
            "title": "first",
            "description": None,
            "completed": False,
            "priority": "medium",
            "tags": ["a"],
            "due_date": None,
            "created_at": "",
            "updated_at": "",
            "completed_at": None,
        }
        assert second.json()["priority"] == "high"

        listed = api.get("/api/tasks", params={"limit": 50, "offset": 0})
        assert listed.status_code == 200, listed.text
        assert listed.headers["X-Total-Count"] == "2"
        assert [task["title"] for task in listed.json()] == ["second", "first"]
        assert listed.json()[0] == second.json()

        one = api.get(f"/api/tasks/{first.json()['id']}")
        assert one.status_code == 200
        assert one.json() == first.json()
        assert api.get("/api/tasks/987654321").status_code == 404


def test_other_users_see_nothing(reference: str) -> None:
    owner = bearer(mint_token(SECRET, "owner", dt.timedelta(minutes=5), Expected()))
    stranger = bearer(mint_token(SECRET, "stranger", dt.timedelta(minutes=5), Expected()))
    created = httpx2.post(f"{reference}/api/tasks", json={"title": "mine"}, headers=owner)
    assert created.status_code == 201, created.text
    listed = httpx2.get(f"{reference}/api/tasks", headers=stranger)
    assert listed.json() == []
    assert listed.headers["X-Total-Count"] == "0"
    task = httpx2.get(f"{reference}/api/tasks/{created.json()['id']}", headers=stranger)
    assert task.status_code == 404


def test_bad_token(reference: str) -> None:
    forged = mint_token(secrets.token_urlsafe(32), "alice", dt.timedelta(minutes=5), Expected())
    expired = mint_token(SECRET, "alice", dt.timedelta(minutes=-5), Expected())
    for token in (forged, expired, "nonsense"):
        response = httpx2.get(f"{reference}/api/tasks", headers=bearer(token))
        assert response.status_code == 401, token
