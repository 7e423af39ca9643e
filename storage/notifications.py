"""How a server process learns of writes that other processes made: PostgreSQL's LISTEN on
the channel every write notifies (storage/feed.py), or, where LISTEN cannot work (behind a
transaction-mode pooler, or on SQLite), a poll of the users' change numbers.

Each runs in a thread of its own and calls `wake(user_id, seq)`; after a gap in which
notifications may have been missed (a reconnect), the listener calls `wake_everyone()`, and
each stream reads the feed again. While the listener cannot listen (its database is away, or
refuses LISTEN), a poller stands in for it. Neither holds a pooled connection: LISTEN has its
own, and the poll borrows one for one statement a second.
"""

from __future__ import annotations

import datetime as dt
import logging
import select
import threading
from collections.abc import Callable, Collection
from typing import Any

from sqlalchemy import create_engine
from sqlalchemy.pool import NullPool

from storage.database import normalize_url, postgres_connect_args
from storage.feed import LISTEN
from storage.records import Task
from storage.reminders import LISTEN_REMINDERS, REMINDER_CHANNEL, Claim, parse_claim

logger = logging.getLogger("todo_api.storage")

Wake = Callable[[str, int], None]
# Called with the claims heard in one read of the connection.
Heard = Callable[[list[Claim]], object]
# The longest wait between attempts to listen again (it doubles from `retry`).
MAX_RETRY_SECONDS = 30.0


def parse_payload(payload: str) -> tuple[str, int] | None:
    """A change notification's user id and number (`seq:user_id`), or None if it is not ours."""
    seq, _, user_id = payload.partition(":")
    if not seq.isdigit() or not user_id:
        return None
    return user_id, int(seq)


class _Loop:
    """A daemon thread that runs `_run` until `stop()`."""

    def __init__(self, name: str) -> None:
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join(timeout=5)

    def _run(self) -> None:
        raise NotImplementedError


class ChangeListener(_Loop):
    """LISTEN on a connection of its own (opened from `url`, outside the pool)."""

    def __init__(
        self,
        url: str,
        wake: Wake,
        wake_everyone: Callable[[], None],
        *,
        remind: Heard | None = None,
        connect_timeout: int = 10,
        retry: float = 1.0,
    ) -> None:
        super().__init__("todo-api-listen")
        # The pool's keepalives too: a listener on a connection that died silently would
        # wait on it for ever, hearing nothing.
        self._engine = create_engine(
            normalize_url(url),
            poolclass=NullPool,
            connect_args=postgres_connect_args(connect_timeout),
        )
        self._wake = wake
        self._wake_everyone = wake_everyone
        # Called with the reminders any process claimed, this one's included.
        self._remind = remind
        self._retry = retry
        self.listening = threading.Event()

    def _run(self) -> None:
        first = True
        delay = self._retry
        while not self._stopped.is_set():
            try:
                self._listen(first)
            except Exception as exc:  # any failure of the connection: reconnect
                if self.listening.is_set():
                    delay = self._retry  # it did listen: try again soon
                self.listening.clear()
                logger.warning(
                    "listening for changes failed; polling until it works; retrying in %.0f s: %s",
                    delay,
                    exc,
                    extra={"event": "listen_failed"},
                )
                self._stopped.wait(delay)
                delay = min(delay * 2, MAX_RETRY_SECONDS)
            first = False
        self._engine.dispose()

    def _listen(self, first: bool) -> None:
        raw = self._engine.raw_connection()
        try:
            connection: Any = raw.driver_connection
            connection.autocommit = True
            with connection.cursor() as cursor:
                cursor.execute(LISTEN)
                if self._remind is not None:
                    cursor.execute(LISTEN_REMINDERS)
            self.listening.set()
            if not first:
                # Writes made while no connection listened were not heard: read them now.
                self._wake_everyone()
            while not self._stopped.is_set():
                readable, _, _ = select.select([connection], [], [], 1.0)
                if not readable:
                    continue
                connection.poll()
                claims = []
                while connection.notifies:
                    notification = connection.notifies.pop(0)
                    if notification.channel == REMINDER_CHANNEL:
                        claim = parse_claim(notification.payload)
                        if claim is not None:
                            claims.append(claim)
                        continue
                    parsed = parse_payload(notification.payload)
                    if parsed is not None:
                        self._wake(*parsed)
                if claims and self._remind is not None:
                    # All at once: a process reads them once per user, not once per claim.
                    self._remind(claims)
        finally:
            raw.close()


class _UsersLoop(_Loop):
    """Every `interval` seconds while `needed()`, one round for the users a stream here waits
    for (none without any)."""

    def __init__(
        self,
        name: str,
        users: Callable[[], Collection[str]],
        interval: float,
        needed: Callable[[], bool] = lambda: True,
    ) -> None:
        super().__init__(name)
        self._users = users
        self._interval = interval
        self._needed = needed

    def _run(self) -> None:
        while not self._stopped.wait(self._interval):
            if not self._needed():
                continue
            users = self._users()
            if users:
                self.round(users)

    def round(self, users: Collection[str]) -> None:
        raise NotImplementedError


class ChangePoller(_UsersLoop):
    """Every `interval` seconds, the latest change number of each user a stream waits for."""

    def __init__(
        self,
        latest: Callable[[Collection[str]], dict[str, int]],
        users: Callable[[], Collection[str]],
        wake: Wake,
        *,
        interval: float = 1.0,
        needed: Callable[[], bool] = lambda: True,
    ) -> None:
        """Polls only while `needed()`: beside a listener, while it is not listening."""
        super().__init__("todo-api-poll", users, interval, needed)
        self._latest = latest
        self._wake = wake
        # Each user's change number at the last round: only a number that moved is news.
        self._seen: dict[str, int] = {}

    def round(self, users: Collection[str]) -> None:
        try:
            latest = self._latest(users)
        except Exception as exc:  # the database is away: the next round tries again
            logger.warning("polling for changes failed: %s", exc, extra={"event": "poll_failed"})
            return
        moved = {user: seq for user, seq in latest.items() if self._seen.get(user) != seq}
        self._seen = latest
        for user_id, seq in moved.items():
            self._wake(user_id, seq)


class ReminderPoller(_UsersLoop):
    """Every `interval` seconds, `settle()` (what the last rounds' streams left to release),
    then claim the due reminders of the users a stream here waits for, and `hand` them (with
    the time of the claim) to those streams. A reminder due while nobody had a stream stays
    due (and listed) until one opens."""

    def __init__(
        self,
        claim: Callable[[Collection[str], dt.datetime], list[Task]],
        hand: Callable[[list[Task], dt.datetime], None],
        users: Callable[[], Collection[str]],
        *,
        settle: Callable[[], None] = lambda: None,
        interval: float = 1.0,
    ) -> None:
        super().__init__("todo-api-reminders", users, interval)
        self._claim = claim
        self._hand = hand
        self._settle = settle

    def _run(self) -> None:
        # Every round, even without a stream here: what the last one left is released.
        while not self._stopped.wait(self._interval):
            self.round(self._users())

    def round(self, users: Collection[str]) -> None:
        now = dt.datetime.now(dt.UTC)
        try:
            self._settle()
            if not users:
                return
            tasks = self._claim(users, now)
            if tasks:
                self._hand(tasks, now)
        except Exception as exc:  # the database is away: the next round tries again
            logger.warning(
                "claiming reminders failed: %s", exc, extra={"event": "reminders_failed"}
            )
