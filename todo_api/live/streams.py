"""The live-updates service of one process: its streams, and how it hears of writes."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.concurrency import run_in_threadpool

from storage import Changes, InvalidCursor, Task, TaskStore
from storage.cursors import feed_position
from storage.notifications import ChangeListener, ChangePoller, ReminderPoller
from storage.tickets import TicketStore
from todo_api.auth.errors import InvalidTicket
from todo_api.live.leases import StreamLeases
from todo_api.live.reminders import ReminderDesk
from todo_api.live.stream import MEDIA_TYPE, EventStream, reset_event
from todo_api.live.wakeups import Wakeups
from todo_api.metrics import Metrics
from todo_api.settings import Settings
from todo_api.usecases.errors import StreamLimit
from todo_api.web.problems import CURSOR_EXPIRED, problem_body

logger = logging.getLogger("todo_api")

# Changes a stream reads at a time; a longer backlog is read in pages of this many.
PAGE = 100


class LiveUpdates:
    def __init__(
        self,
        settings: Settings,
        store: TaskStore,
        tickets: TicketStore,
        wakeups: Wakeups,
        slots: asyncio.Semaphore,
        metrics: Metrics | None = None,
        leases: StreamLeases | None = None,
    ) -> None:
        self._settings = settings
        self._store = store
        self._tickets = tickets
        self.wakeups = wakeups
        # The admission places (one per pooled connection): a stream takes one for each read.
        self._slots = slots
        self._metrics = metrics
        # The per-user bound across processes (REDIS_URL); Wakeups holds this process's bounds.
        self._leases = leases
        self._watchers: list[ChangeListener | ChangePoller | ReminderPoller] = []
        # Without LISTEN, a process's claims reach its own streams only (and each process
        # claims for its own): a claim none of them took is released at once. With it, every
        # listening process hands each claim to its streams, and a claim lapses at its lease.
        self.reminders = ReminderDesk(
            store.reminders(dt.timedelta(seconds=settings.reminder_lease_seconds)),
            wakeups,
            exclusive=settings.wakeups == "poll",
        )

    def start(self) -> None:
        settings = self._settings
        listener = None
        if settings.wakeups == "listen":
            listener = ChangeListener(
                settings.database_direct_url or settings.database_url,
                self.wakeups.wake,
                self.wakeups.wake_everyone,
                remind=self.reminders.heard,
                connect_timeout=settings.pool.connect_timeout,
            )
            self._watchers.append(listener)
        self._watchers.append(
            ChangePoller(
                self._store.latest_changes,
                self.wakeups.users,
                self.wakeups.wake,
                # Beside a listener, only while it is not listening.
                needed=(lambda: not listener.listening.is_set()) if listener else lambda: True,
            )
        )
        self._watchers.append(
            ReminderPoller(
                self.reminders.claim,
                self.reminders.hand_claimed,
                self.wakeups.users,
                settle=self.reminders.settle,
            )
        )
        for watcher in self._watchers:
            watcher.start()
        if self._leases is not None:
            self._leases.start()

    def stop(self) -> None:
        for watcher in self._watchers:
            watcher.stop()

    async def close(self) -> None:
        """After `stop`: the leases still held are given back."""
        if self._leases is not None:
            await self._leases.close()

    async def open(
        self,
        user_id: str,
        cursor: str | None,
        expires_at: dt.datetime | None,
        *,
        cursor_parameter: str = "cursor",
        ticket: str | None = None,
    ) -> EventStream:
        """A stream of the user's changes after `cursor`; StreamLimit past a bound, and
        InvalidCursor (naming `cursor_parameter`) for a cursor that is not the feed's. The
        `ticket` that admitted the request, if one did, is spent last, once nothing else can
        refuse the stream: InvalidTicket if another request spent it first."""
        try:
            position = feed_position(cursor) if cursor is not None else 0
        except InvalidCursor as exc:
            exc.parameter = cursor_parameter
            raise
        lifetime = self._settings.stream_max_seconds
        if expires_at is not None:
            lifetime = min(lifetime, (expires_at - dt.datetime.now(dt.UTC)).total_seconds())
        # This process's bounds first: a stream they refuse costs no call to Redis.
        watch = self.wakeups.watch(user_id)
        on_close = None
        try:
            on_close = await self._lease(user_id)
            if ticket is not None:
                await self._spend(ticket, user_id)
            return EventStream(
                watch=watch,
                read=lambda after: self._read(user_id, after),
                confirm=self._confirm,
                cursor=cursor,
                position=position,
                lifetime=lifetime,
                heartbeat=self._settings.stream_heartbeat,
                send_timeout=self._settings.stream_send_timeout,
                reset=reset_event(problem_body(410, CURSOR_EXPIRED)[0]),
                headers={
                    "Content-Type": MEDIA_TYPE,
                    "Cache-Control": "no-store",
                    # Proxies such as nginx would otherwise hold events back in a buffer.
                    "X-Accel-Buffering": "no",
                },
                metrics=self._metrics,
                on_close=on_close,
            )
        except BaseException:
            watch.close()
            if on_close is not None:
                await on_close()
            raise

    async def _confirm(self, tasks: list[Task]) -> None:
        """A stream wrote these reminders first. If the database cannot be told now, their
        leases run out and they are sent again: at least once, never lost."""
        try:
            async with self._slots:
                await run_in_threadpool(self.reminders.deliver, tasks)
        except (OperationalError, PoolTimeout) as exc:
            logger.warning(
                "confirming reminders failed: %s", exc, extra={"event": "reminders_failed"}
            )

    async def _spend(self, ticket: str, user_id: str) -> None:
        async with self._slots:
            redeemed = await run_in_threadpool(self._tickets.redeem, ticket, user_id)
        if redeemed is None:
            raise InvalidTicket()

    async def _lease(self, user_id: str) -> Callable[[], Awaitable[None]] | None:
        """The user's lease across processes, and how to give it back; StreamLimit if the
        user's streams in all processes are at the bound."""
        leases = self._leases
        if leases is None:
            return None
        lease = await leases.acquire(user_id)
        if lease is None:
            if self._metrics is not None:
                self._metrics.streams_refused.labels("user").inc()
            raise StreamLimit(per_user=True, limit=leases.per_user)
        return lambda: leases.release(user_id, lease)

    async def _read(self, user_id: str, cursor: str | None) -> Changes:
        async with self._slots:
            return await run_in_threadpool(self._store.changes, user_id, cursor, PAGE)
