"""How a process hears of writes: the choice of LISTEN or polling, the notification's form,
and the registry of streams with its bounds."""

from __future__ import annotations

import asyncio
import datetime as dt
import queue
import threading
import uuid

import pytest
from sqlalchemy import Engine

from storage import PreconditionFailed, TaskStore
from storage.cursors import feed_cursor
from storage.notifications import ChangePoller, ReminderPoller, parse_payload
from storage.records import IfMatch, TaskQuery
from todo_api.contract import task_defaults
from todo_api.live.reminders import ReminderDesk
from todo_api.live.wakeups import Wakeups
from todo_api.settings import ConfigError, Settings
from todo_api.usecases.errors import StreamLimit

POSTGRES = "postgresql://u:p@ep-cool-name-123.eu-central-1.aws.neon.tech/db?sslmode=require"
POOLED = "postgresql://u:p@ep-cool-name-123-pooler.eu-central-1.aws.neon.tech/db?sslmode=require"


@pytest.mark.parametrize(
    ("environ", "wakeups"),
    [
        ({}, "poll"),  # SQLite: one file, several processes may share it
        ({"DATABASE_URL": POSTGRES}, "listen"),
        ({"DATABASE_URL": POOLED}, "poll"),  # a transaction-mode pooler drops LISTEN sessions
        ({"DATABASE_URL": POOLED, "DATABASE_DIRECT_URL": POSTGRES}, "listen"),
        ({"DATABASE_URL": POSTGRES, "STREAM_WAKEUPS": "poll"}, "poll"),
        ({"DATABASE_URL": POOLED, "STREAM_WAKEUPS": "LISTEN"}, "listen"),
    ],
)
def test_how_a_process_hears_of_writes(environ: dict[str, str], wakeups: str) -> None:
    assert Settings.from_env({"BETTER_AUTH_SECRET": "x" * 40} | environ).wakeups == wakeups


def test_wakeups_that_cannot_work_are_refused() -> None:
    with pytest.raises(ConfigError, match="STREAM_WAKEUPS must be one of auto, listen, poll"):
        Settings.from_env({"STREAM_WAKEUPS": "push"})
    with pytest.raises(ConfigError, match="needs PostgreSQL"):
        Settings.from_env({"STREAM_WAKEUPS": "listen"})


def test_a_notification_is_the_change_number_then_the_user() -> None:
    assert parse_payload("17:alice") == ("alice", 17)
    # A user id may hold a colon: only the first one separates.
    assert parse_payload("3:github:42") == ("github:42", 3)
    for foreign in ("", "alice", "x:alice", "17:", "-1:alice"):
        assert parse_payload(foreign) is None


def test_streams_are_bounded_per_user_and_per_process_and_released() -> None:
    async def scenario() -> None:
        hub = Wakeups(per_user=2, per_process=3)
        alice = [hub.watch("alice"), hub.watch("alice")]
        with pytest.raises(StreamLimit) as refused:
            hub.watch("alice")
        assert refused.value.per_user
        bob = hub.watch("bob")
        with pytest.raises(StreamLimit) as full:
            hub.watch("carol")
        assert not full.value.per_user
        assert hub.open_streams() == 3
        alice[0].close()
        alice[0].close()  # twice is once
        assert hub.open_streams() == 2
        hub.watch("carol").close()
        assert sorted(hub.users()) == ["alice", "bob"]
        bob.close()
        alice[1].close()
        assert hub.users() == []
        assert hub.open_streams() == 0

    asyncio.run(scenario())


def test_a_wake_reaches_only_that_users_streams_and_only_for_news() -> None:
    async def scenario() -> None:
        hub = Wakeups(per_user=5, per_process=5)
        alice, bob = hub.watch("alice"), hub.watch("bob")
        hub.wake("alice", 4)
        assert await alice.wait(after=3, timeout=1)
        assert not await bob.wait(after=0, timeout=0.05)
        # A change the stream has already read is no news (a late or repeated notification).
        assert not await alice.wait(after=4, timeout=0.05)
        # From another thread, as the listener and the thread pool wake streams.
        await asyncio.to_thread(hub.wake, "bob", 1)
        assert await bob.wait(after=0, timeout=1)
        hub.wake_everyone()
        assert await alice.wait(after=10**9, timeout=1)

    asyncio.run(scenario())


def test_a_wake_for_everyone_is_one_read_of_the_feed_not_a_loop() -> None:
    async def scenario() -> None:
        hub = Wakeups(per_user=5, per_process=5)
        alice = hub.watch("alice")
        hub.wake_everyone()
        assert await alice.wait(after=7, timeout=1)
        assert alice.news_after(7)
        alice.reading()  # the stream reads the feed, and stands after change 7
        assert not alice.news_after(7)
        assert not await alice.wait(after=7, timeout=0.05)
        hub.wake("alice", 8)  # later changes are news again
        assert await alice.wait(after=7, timeout=1)

    asyncio.run(scenario())


def test_at_shutdown_every_stream_ends_and_no_new_one_opens() -> None:
    async def scenario() -> None:
        hub = Wakeups(per_user=5, per_process=5)
        watch = hub.watch("alice")
        waiting = asyncio.create_task(watch.wait(after=0, timeout=30))
        await asyncio.sleep(0)
        hub.end_all()
        assert await asyncio.wait_for(waiting, 1)
        assert watch.ended
        with pytest.raises(StreamLimit):
            hub.watch("bob")

    asyncio.run(scenario())


def test_a_poller_wakes_the_users_with_changes_and_only_while_it_is_needed(
    engine: Engine, client: object
) -> None:
    store = TaskStore(engine, quota=100)
    task = {"title": "t", "description": None, "completed": False}
    user = f"polled-{uuid.uuid4().hex}"  # no earlier test's tasks
    store.create(user, task_defaults() | task)
    wakes: queue.Queue[tuple[str, int]] = queue.Queue()
    needed = threading.Event()
    poller = ChangePoller(
        store.latest_changes,
        lambda: [user, "nobody"],
        lambda user_id, seq: wakes.put((user_id, seq)),
        interval=0.05,
        needed=needed.is_set,
    )
    poller.start()
    try:
        with pytest.raises(queue.Empty):
            wakes.get(timeout=0.3)
        needed.set()
        assert wakes.get(timeout=5) == (user, 1)
        # Rounds in which the number stands still wake nobody; the next write does.
        with pytest.raises(queue.Empty):
            wakes.get(timeout=0.3)
        store.create(user, task_defaults() | task)
        assert wakes.get(timeout=5) == (user, 2)
    finally:
        poller.stop()


def test_the_store_announces_each_committed_write_once_it_has_committed(
    engine: Engine, client: object
) -> None:
    announced: list[tuple[str, int, bool]] = []

    def on_change(user_id: str, seq: int) -> None:
        # Called after the commit: another connection already sees the write.
        visible = TaskStore(engine, quota=100).changes(user_id, None, 500).cursor
        announced.append((user_id, seq, visible == feed_cursor(seq)))

    store = TaskStore(engine, quota=100, on_change=on_change)
    user = f"announced-{uuid.uuid4().hex}"
    fields = {"title": "t", "description": None, "completed": False}
    task = store.create(user, task_defaults() | fields).task
    store.update(user, task.id, {"title": "two"})
    store.update(user, task.id, {"title": "two"})  # nothing to write: nothing announced
    with pytest.raises(PreconditionFailed):
        store.update(user, task.id, {"title": "x"}, if_match=IfMatch(frozenset({1})))
    store.set_completed(user, task.id, None)
    store.delete(user, task.id)
    store.restore(user, task.id)
    assert announced == [(user, seq, True) for seq in range(1, 6)]


@pytest.mark.parametrize("exclusive", [True, False])
def test_a_claimed_reminder_no_stream_took_is_claimable_again(
    engine: Engine, client: object, exclusive: bool
) -> None:
    """The user's last stream closed between the round's list of users and its claim. A
    process whose claims no other process hears (polling) releases the claim at once; a
    listening one cannot know whether another process's stream took it, and its lease runs
    out instead. Either way it was not delivered: `?reminder=due` still lists it."""
    store = TaskStore(engine, quota=100)
    user = f"reminded-{uuid.uuid4().hex}"
    due = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    fields = {"title": "t", "due_date": due, "remind_before": dt.timedelta(0)}
    task = store.create(user, task_defaults() | fields).task
    reminders = store.reminders(dt.timedelta(seconds=30))
    desk = ReminderDesk(reminders, Wakeups(per_user=1, per_process=1), exclusive=exclusive)
    poller = ReminderPoller(desk.claim, desk.hand_claimed, lambda: [user], settle=desk.settle)
    poller.round([user])
    now = dt.datetime.now(dt.UTC)
    again = [t.id for t in reminders.claim([user], now)]
    assert again == ([task.id] if exclusive else [])
    if not exclusive:
        lapsed = now + dt.timedelta(seconds=31)
        assert [t.id for t in reminders.claim([user], lapsed)] == [task.id]
    listed = store.list_tasks(user, TaskQuery(reminder_due=True))
    assert [t.id for t in listed.tasks] == [task.id]
