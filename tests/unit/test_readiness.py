"""Readiness asks the database at most once a second, however often probes come."""

from __future__ import annotations

import pytest

from todo_api.web.readiness import Readiness


class Database:
    def __init__(self) -> None:
        self.pings = 0
        self.down = False

    def ping(self) -> None:
        self.pings += 1
        if self.down:
            raise ConnectionError("the database is away")


def test_probes_within_a_second_share_one_ping() -> None:
    database = Database()
    readiness = Readiness(database.ping, fresh=60)
    for _ in range(1000):
        readiness.check()
    assert database.pings == 1


def test_a_failed_ping_is_every_probes_answer_until_the_next() -> None:
    database = Database()
    database.down = True
    readiness = Readiness(database.ping, fresh=60)
    for _ in range(3):
        with pytest.raises(ConnectionError):
            readiness.check()
    assert database.pings == 1


def test_a_stale_answer_is_asked_again() -> None:
    database = Database()
    readiness = Readiness(database.ping, fresh=0)
    readiness.check()
    database.down = True
    with pytest.raises(ConnectionError):
        readiness.check()
    database.down = False
    readiness.check()
    assert database.pings == 3
