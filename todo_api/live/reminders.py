"""Reminders in this process: each claimed (or heard of) reminder handed, as the task itself,
to every stream of its user here, confirmed by the first that writes it, and released when
this process knows that none did.

A stream never reads a reminder's task: the claim returns the rows, and a reminder another
process claimed (heard of by LISTEN) is read once for all this process's streams of its user.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import uuid
from collections import defaultdict
from collections.abc import Collection

from storage import Task
from storage.reminders import Claim, ReminderStore
from todo_api.live.wakeups import Wakeups

logger = logging.getLogger("todo_api")


class Delivery:
    """One reminder on its way to `holders` streams of its user. Changed on the streams'
    event loop only, once made."""

    __slots__ = ("_desk", "claimed_at", "holders", "task", "written")

    def __init__(
        self, desk: ReminderDesk, task: Task, holders: int, claimed_at: dt.datetime | None
    ) -> None:
        self._desk = desk
        self.task = task
        self.holders = holders
        # When this process claimed it; None for one another process claimed (not ours to
        # release: its lease runs out instead).
        self.claimed_at = claimed_at
        self.written = False

    def wrote(self) -> bool:
        """A stream wrote it: whether it is the first (which has it confirmed)."""
        self.holders -= 1
        first, self.written = not self.written, True
        return first

    def drop(self) -> None:
        """A stream ended without writing it."""
        self.holders -= 1
        if self.holders == 0 and not self.written and self.claimed_at is not None:
            self._desk.release_later(self)


class ReminderDesk:
    """Hands reminders to this process's streams. `exclusive`: no other process sends this
    process's claims to its streams (it does not LISTEN, so its claims are taken to be its own
    alone), so a claim no stream here took may be released at once; otherwise only its lease
    frees it."""

    def __init__(self, store: ReminderStore, wakeups: Wakeups, *, exclusive: bool) -> None:
        self._store = store
        self._wakeups = wakeups
        self._exclusive = exclusive
        # Names this process's claims on the reminder channel: it hands those itself.
        self.claimer = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._to_release: list[Delivery] = []
        # Other processes' claims heard, by user: read by the poller's thread, not the
        # listener's, which must never wait on the database.
        self._heard: defaultdict[tuple[str, dt.datetime], set[int]] = defaultdict(set)

    def claim(self, user_ids: Collection[str], now: dt.datetime) -> list[Task]:
        return self._store.claim(user_ids, now, claimer=self.claimer)

    def hand_claimed(self, tasks: list[Task], claimed_at: dt.datetime) -> None:
        """Reminders this process claimed at `claimed_at` (called from the poller's thread)."""
        mine = claimed_at if self._exclusive else None
        for user_id, theirs in _by_user(tasks).items():
            if not self._hand(user_id, theirs, mine) and self._exclusive:
                self._store.release(user_id, [task.id for task in theirs], claimed_at)

    def heard(self, claims: list[Claim]) -> None:
        """Claims heard on the reminder channel (called from the listener's thread): those of
        other processes are kept for `settle` to read, once per user, for this process's
        streams of the user."""
        with self._lock:
            for user_id, task_id, claimer, until in claims:
                if claimer != self.claimer and self._wakeups.watches_of(user_id):
                    self._heard[user_id, until].add(task_id)

    def _read_heard(self) -> None:
        with self._lock:
            wanted, self._heard = self._heard, defaultdict(set)
        for (user_id, until), task_ids in wanted.items():
            try:
                tasks = self._store.read(user_id, task_ids, until)
            except Exception as exc:  # the database is away: the leases run out meanwhile
                logger.warning(
                    "reading claimed reminders failed: %s",
                    exc,
                    extra={"event": "reminders_failed"},
                )
                continue
            self._hand(user_id, tasks, None)

    def _hand(self, user_id: str, tasks: list[Task], claimed_at: dt.datetime | None) -> bool:
        """Whether any stream of the user's was here to take them."""
        watches = self._wakeups.watches_of(user_id)
        if not watches:
            return False
        for task in tasks:
            delivery = Delivery(self, task, len(watches), claimed_at)
            for watch in watches:
                watch.remind(delivery)
        return True

    def release_later(self, delivery: Delivery) -> None:
        """Every stream that held it ended without writing it: released at the next round."""
        with self._lock:
            self._to_release.append(delivery)

    def settle(self) -> None:
        """Hand on the claims heard from other processes, and release what streams left
        (called from the poller's thread, before it claims)."""
        self._read_heard()
        with self._lock:
            left, self._to_release = self._to_release, []
        groups: defaultdict[tuple[str, dt.datetime], list[int]] = defaultdict(list)
        for delivery in left:
            assert delivery.claimed_at is not None
            groups[delivery.task.user_id, delivery.claimed_at].append(delivery.task.id)
        for (user_id, claimed_at), task_ids in groups.items():
            self._store.release(user_id, task_ids, claimed_at)

    def deliver(self, tasks: list[Task]) -> None:
        """A stream here wrote these first: they are delivered (called in a worker thread)."""
        self._store.deliver(tasks)


def _by_user(tasks: list[Task]) -> dict[str, list[Task]]:
    grouped: defaultdict[str, list[Task]] = defaultdict(list)
    for task in tasks:
        grouped[task.user_id].append(task)
    return grouped
