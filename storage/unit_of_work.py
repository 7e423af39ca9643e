"""The unit of work: what one write holds from its first statement to its end.

A write begins one (`Writes.begin()`), runs every statement on its connection, reads the clock
once (`now`), and ends it explicitly: `commit()`, or `rollback()` for a write that must leave
nothing behind. Each change of a user's tasks that it records, as (user id, change sequence
number), is announced to `on_change` once it has committed, and never if it has not.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, RootTransaction

from storage import clock


class UnitOfWork:
    """One write's transaction, its clock and the changes it made."""

    __slots__ = ("_transaction", "changes", "committed", "connection", "now")

    def __init__(
        self, connection: Connection, transaction: RootTransaction, now: dt.datetime
    ) -> None:
        self.connection = connection
        self.now = now
        # (user id, change sequence number) of each change, in the order they were taken.
        self.changes: list[tuple[str, int]] = []
        self.committed = False
        self._transaction = transaction

    def add_change(self, user_id: str, seq: int) -> None:
        self.changes.append((user_id, seq))

    def commit(self) -> None:
        self._transaction.commit()
        self.committed = True

    def rollback(self) -> None:
        """End the write leaving nothing behind: no row or count moved, no change announced."""
        self._transaction.rollback()
        self.changes.clear()


class Writes:
    """Begins the units of work of one store, and announces what each committed."""

    def __init__(self, engine: Engine, on_change: Callable[[str, int], None] | None) -> None:
        self._engine = engine
        self._on_change = on_change

    @contextmanager
    def begin(self) -> Iterator[UnitOfWork]:
        """A unit of work; an exception rolls it back. Its changes are announced after its
        connection has gone back to the pool."""
        with self._engine.connect() as connection, connection.begin() as transaction:
            work = UnitOfWork(connection, transaction, clock.utc_now())
            yield work
            if transaction.is_active:
                # A write that forgot to end would otherwise be undone without a word.
                transaction.rollback()
                raise RuntimeError("a unit of work must end in commit() or rollback()")
        if work.committed and self._on_change is not None:
            for user_id, seq in work.changes:
                self._on_change(user_id, seq)
