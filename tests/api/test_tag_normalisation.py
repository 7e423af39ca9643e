"""Tags are read in NFC and trimmed wherever they come in: canonically equal tags are one."""

from __future__ import annotations

import datetime as dt
import os
import unicodedata
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from sqlalchemy import insert, select
from starlette.testclient import TestClient

from storage import TaskStore, build_engine, upgrade
from storage.models import TaskOwnerRow, TaskRow
from tests.databases import fresh_postgres

Create = Callable[..., dict[str, Any]]

NFC = "caf\u00e9"
NFD = "cafe\u0301"
# Its NFC is two characters (U+0308 U+0301): thirty of it is sixty.
EXPANDING = "\u0344"


def counts(client: TestClient, headers: dict[str, str]) -> list[tuple[str, int, int]]:
    response = client.get("/api/tags", headers=headers)
    assert response.status_code == 200, response.text
    return [(t["tag"], t["pending"], t["completed"]) for t in response.json()]


def test_a_tasks_tags_are_stored_in_nfc_trimmed_and_merged(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(tags=[NFD, f" {NFC} ", "work", "work "])
    assert task["tags"] == [NFC, "work"]
    updated = client.patch(f"/api/tasks/{task['id']}", json={"tags": [" new", NFD]}, headers=alice)
    assert updated.status_code == 200, updated.text
    assert updated.json()["tags"] == ["new", NFC]
    put = client.put(f"/api/tasks/{task['id']}", json={"tags": [f"{NFD}\u00a0"]}, headers=alice)
    assert put.json()["tags"] == [NFC]


def test_canonically_equal_tags_are_counted_as_one(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    create(tags=[NFC])
    create(tags=[NFD])
    create(tags=[f"  {NFD}"], completed=True)
    assert counts(client, alice) == [(NFC, 2, 1)]


def test_the_tag_filter_is_read_in_nfc_and_trimmed(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    tagged = create(tags=[NFC])
    create(tags=["other"])
    for asked in (NFD, NFC, f" {NFD} "):
        response = client.get(f"/api/tasks?tag={quote(asked)}", headers=alice)
        assert response.status_code == 200, response.text
        assert [task["id"] for task in response.json()] == [tagged["id"]], asked


def test_a_rename_reads_both_tags_in_nfc_and_trimmed(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    first = create(tags=[NFC, "x"])
    second = create(tags=["x", NFC])
    renamed = client.post(
        f"/api/tags/{quote(NFD)}/rename", json={"to": " Ta\u0301g "}, headers=alice
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["tag"] == "T\u00e1g" == unicodedata.normalize("NFC", "Ta\u0301g")
    assert client.get(f"/api/tasks/{first['id']}", headers=alice).json()["tags"] == ["Tág", "x"]
    back = client.post("/api/tags/T%C3%A1g/rename", json={"to": NFD}, headers=alice)
    assert back.json() == {"tag": NFC, "pending": 2, "completed": 0}
    assert client.get(f"/api/tasks/{second['id']}", headers=alice).json()["tags"] == ["x", NFC]
    # To itself, written either way, changes nothing.
    etag = client.get(f"/api/tasks/{second['id']}", headers=alice).headers["ETag"]
    same = client.post(f"/api/tags/{quote(NFC)}/rename", json={"to": f"{NFD} "}, headers=alice)
    assert same.status_code == 200, same.text
    assert client.get(f"/api/tasks/{second['id']}", headers=alice).headers["ETag"] == etag


def test_a_tag_longer_than_the_limit_in_nfc_is_422(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    long = EXPANDING * 30
    response = client.post("/api/tasks", json={"title": "t", "tags": ["ok", long]}, headers=alice)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert [e["pointer"] for e in response.json()["errors"]] == ["#/tags/1"]
    create(tags=["short"])
    renamed = client.post("/api/tags/short/rename", json={"to": long}, headers=alice)
    assert renamed.status_code == 422, renamed.text
    assert [e["pointer"] for e in renamed.json()["errors"]] == ["#/to"]


@pytest.fixture
def old_database(tmp_path: Path) -> Iterator[str]:
    """An empty database of the run's kind (SQLite, or TEST_DATABASE_URL's server)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        with fresh_postgres(url) as database:
            yield database
    else:
        yield f"sqlite:///{tmp_path}/old.db"


def test_the_migration_normalises_stored_tags(old_database: str) -> None:
    engine = build_engine(old_database)
    upgrade(engine, "0007")
    at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    rows = [
        (1, [NFD, f" {NFC}", "b"], None),
        (2, ["a", "b"], None),
        (3, [NFD], at),
    ]
    with engine.begin() as connection:
        for seq, tags, deleted in rows:
            connection.execute(
                insert(TaskRow).values(
                    id=seq,
                    user_id="alice",
                    title="t",
                    completed=False,
                    priority=2,
                    tags=tags,
                    created_at=at,
                    updated_at=at,
                    seq=seq,
                    deleted_at=deleted,
                )
            )
        connection.execute(
            insert(TaskOwnerRow).values(
                user_id="alice", task_count=2, change_seq=3, tombstone_count=1
            )
        )
    upgrade(engine)
    store = TaskStore(engine, quota=100)
    first, second = (store.get("alice", task_id) for task_id in (1, 2))
    assert first.tags == [NFC, "b"]
    assert (first.version, second.version) == (2, 1)
    # The changed task is reported again by the feed, after every earlier write.
    changes = store.changes("alice", None, 10).changes
    assert [change.id for change in changes] == [2, 3, 1]
    with engine.connect() as connection:
        deleted = connection.execute(
            select(TaskRow.tags, TaskRow.version).where(TaskRow.id == 3)
        ).one()
    assert (deleted.tags, deleted.version) == ([NFC], 1)
    assert [(t.tag, t.pending) for t in store.list_tags("alice", 10).tags] == [
        ("b", 2),
        ("a", 1),
        (NFC, 1),
    ]
    engine.dispose()
