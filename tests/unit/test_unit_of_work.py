"""A write's unit of work: it ends by an explicit commit or rollback, and what it recorded is
announced after it commits, never otherwise."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, create_engine, text

import storage.clock
from storage.unit_of_work import Writes


@pytest.fixture
def memory() -> Iterator[Engine]:
    engine = create_engine("sqlite://")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n INTEGER)"))
    yield engine
    engine.dispose()


def rows(engine: Engine) -> list[int]:
    with engine.connect() as connection:
        return list(connection.scalars(text("SELECT n FROM t ORDER BY n")))


def test_a_committed_write_stays_and_its_changes_are_announced_after(memory: Engine) -> None:
    announced: list[tuple[str, int]] = []
    writes = Writes(memory, lambda user, seq: announced.append((user, seq)))
    with writes.begin() as work:
        work.connection.execute(text("INSERT INTO t VALUES (1)"))
        work.add_change("alice", 7)
        work.add_change("bob", 3)
        work.commit()
        assert announced == []  # not before the connection has gone back
    assert announced == [("alice", 7), ("bob", 3)]
    assert rows(memory) == [1]


def test_a_rolled_back_write_leaves_nothing_and_announces_nothing(memory: Engine) -> None:
    announced: list[tuple[str, int]] = []
    writes = Writes(memory, lambda user, seq: announced.append((user, seq)))
    with writes.begin() as work:
        work.connection.execute(text("INSERT INTO t VALUES (1)"))
        work.add_change("alice", 7)
        work.rollback()
    assert announced == []
    assert rows(memory) == []


def test_an_exception_rolls_the_write_back(memory: Engine) -> None:
    announced: list[tuple[str, int]] = []
    writes = Writes(memory, lambda user, seq: announced.append((user, seq)))

    def fail() -> None:
        with writes.begin() as work:
            work.connection.execute(text("INSERT INTO t VALUES (1)"))
            work.add_change("alice", 7)
            raise LookupError

    with pytest.raises(LookupError):
        fail()
    assert announced == []
    assert rows(memory) == []


def test_a_write_that_does_not_end_is_rolled_back_and_refused(memory: Engine) -> None:
    writes = Writes(memory, None)

    def forget() -> None:
        with writes.begin() as work:
            work.connection.execute(text("INSERT INTO t VALUES (1)"))

    with pytest.raises(RuntimeError, match="commit"):
        forget()
    assert rows(memory) == []


def test_one_write_reads_the_clock_once(memory: Engine, monkeypatch: pytest.MonkeyPatch) -> None:

    readings = iter(
        [dt.datetime(2027, 1, 1, tzinfo=dt.UTC), dt.datetime(2028, 1, 1, tzinfo=dt.UTC)]
    )
    monkeypatch.setattr(storage.clock, "utc_now", lambda: next(readings))
    with Writes(memory, None).begin() as work:
        assert work.now == dt.datetime(2027, 1, 1, tzinfo=dt.UTC)
        work.commit()
    # The second reading is still there: the write took one.
    assert next(readings) == dt.datetime(2028, 1, 1, tzinfo=dt.UTC)
