"""Which streams of this process wait for which user, and waking them.

A wake carries the user's change number and nothing else: a stream reads what changed from
the feed, so a wake that comes twice, late, or for a change already read costs one read.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
from collections import defaultdict
from typing import Protocol

from storage import Task
from todo_api.metrics import Metrics
from todo_api.usecases.errors import StreamLimit


class Delivery(Protocol):
    """A reminder on its way to a user's streams (todo_api/live/reminders.py), as a stream
    sees it: the task, and what to say once written or given up."""

    task: Task

    def wrote(self) -> bool: ...

    def drop(self) -> None: ...


class Watch:
    """One stream's place in the registry; woken from any thread."""

    def __init__(self, hub: Wakeups, user_id: str, loop: asyncio.AbstractEventLoop) -> None:
        self.user_id = user_id
        self._hub = hub
        self._loop = loop
        self._event = asyncio.Event()
        self._latest = -1.0
        # Set by `wake_everyone`: whatever the number, the feed must be read once more.
        self._unsure = False
        # Reminders that came (each with its task), in the order they came, not yet sent.
        self._reminders: list[Delivery] = []
        self._closed = False
        # Set when the server shuts down: the stream ends, completing its answer.
        self.ended = False

    def wake(self, seq: float) -> None:
        # The stream's event loop may have closed (RuntimeError): nobody is waiting then.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._woken, seq)

    def remind(self, delivery: Delivery) -> None:
        try:
            self._loop.call_soon_threadsafe(self._reminded, delivery)
        except RuntimeError:  # the loop closed: nobody will write it
            delivery.drop()

    def _reminded(self, delivery: Delivery) -> None:
        if self._closed:
            delivery.drop()
            return
        self._reminders.append(delivery)
        self._event.set()

    def take_reminders(self) -> list[Delivery]:
        """The reminders that came since the last call (called on the stream's loop)."""
        taken, self._reminders = self._reminders, []
        return taken

    def news_after(self, after: int) -> bool:
        """Whether a change after number `after` was announced (else only reminders came)."""
        return self._unsure or self._latest > after

    def reading(self) -> None:
        """The stream reads the feed now (on its loop): a wake for every stream is answered."""
        self._unsure = False

    def end(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._ended)

    def _ended(self) -> None:
        self.ended = True
        self._event.set()

    def _woken(self, seq: float) -> None:
        if seq == math.inf:
            self._unsure = True
        elif seq > self._latest:
            self._latest = seq
        self._event.set()

    async def wait(self, after: int, timeout: float) -> bool:
        """Wait up to `timeout` seconds for a change after number `after` or a reminder:
        whether one came (or the stream must end)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.news_after(after) and not self.ended and not self._reminders:
            self._event.clear()
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            try:
                async with asyncio.timeout(remaining):
                    await self._event.wait()
            except TimeoutError:
                return self.news_after(after) or self.ended or bool(self._reminders)
        return True

    def close(self) -> None:
        """The stream ended (called on its loop): the reminders it did not write are left."""
        self._closed = True
        left, self._reminders = self._reminders, []
        for delivery in left:
            delivery.drop()
        self._hub._release(self)


class Wakeups:
    """The streams of this process, at most `per_user` for one user and `per_process` in all."""

    def __init__(self, per_user: int, per_process: int, metrics: Metrics | None = None) -> None:
        self.per_user = per_user
        self.per_process = per_process
        self._metrics = metrics
        self._lock = threading.Lock()
        self._watches: defaultdict[str, set[Watch]] = defaultdict(set)
        self._count = 0
        self._closing = False

    def watch(self, user_id: str) -> Watch:
        """Register a stream of `user_id`; StreamLimit if either bound is reached. Existing
        streams are never closed to make room: a new one is refused instead."""
        watch = Watch(self, user_id, asyncio.get_running_loop())
        with self._lock:
            refusal = None
            if self._closing:
                refusal = StreamLimit(per_user=False, limit=0)
            elif len(self._watches.get(user_id, ())) >= self.per_user:
                refusal = StreamLimit(per_user=True, limit=self.per_user)
            elif self._count >= self.per_process:
                refusal = StreamLimit(per_user=False, limit=self.per_process)
            else:
                self._watches[user_id].add(watch)
                self._count += 1
        if self._metrics is not None:
            if refusal is None:
                self._metrics.streams_open.inc()
            else:
                self._metrics.streams_refused.labels(
                    "user" if refusal.per_user else "process"
                ).inc()
        if refusal is not None:
            raise refusal
        return watch

    def _release(self, watch: Watch) -> None:
        with self._lock:
            watches = self._watches.get(watch.user_id)
            if watches is None or watch not in watches:
                return
            watches.discard(watch)
            self._count -= 1
            if not watches:
                del self._watches[watch.user_id]
        if self._metrics is not None:
            self._metrics.streams_open.dec()

    def wake(self, user_id: str, seq: int) -> None:
        """A change numbered `seq` of `user_id` committed; callable from any thread."""
        with self._lock:
            watches = list(self._watches.get(user_id, ()))
        for watch in watches:
            watch.wake(seq)

    def watches_of(self, user_id: str) -> list[Watch]:
        """The user's streams here now; callable from any thread."""
        with self._lock:
            return list(self._watches.get(user_id, ()))

    def wake_everyone(self) -> None:
        """Every stream reads the feed again (changes may have been missed)."""
        with self._lock:
            watches = [watch for group in self._watches.values() for watch in group]
        for watch in watches:
            watch.wake(math.inf)

    def end_all(self) -> None:
        """The server is shutting down: every stream ends now, and no new one opens."""
        with self._lock:
            self._closing = True
            watches = [watch for group in self._watches.values() for watch in group]
        for watch in watches:
            watch.end()

    def users(self) -> list[str]:
        with self._lock:
            return list(self._watches)

    def open_streams(self) -> int:
        return self._count
