"""The rolling restart's traffic (tests/interop/rollout/run.py): client threads that create
and read tasks, event streams that resume by Last-Event-ID, and what each part of the run saw."""

from __future__ import annotations

import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2

from tests.sse import EventReader

LOAD_THREADS = 4
# A client's pause between one create-and-read and the next: constant load that leaves the
# 2-core machine room to start the new processes.
THINK_SECONDS = 0.005


def clock() -> str:
    now = time.time()
    return f"[{time.strftime('%H:%M:%S', time.localtime(now))}.{int(now * 1000) % 1000:03d}]"


@dataclass
class Phase:
    """What the clients saw during one part of the run."""

    name: str
    requests: int = 0
    failures: list[str] = field(default_factory=list)
    # Acknowledged creates (201): task id -> title.
    acked: dict[int, str] = field(default_factory=dict)
    # Creates that got no 201: they may or may not have been stored.
    unanswered: set[str] = field(default_factory=set)
    slowest: float = 0.0
    # Requests of this phase not answered yet.
    in_flight: int = 0


class Phases:
    def __init__(self, *names: str) -> None:
        self.lock = threading.Lock()
        self.all = {name: Phase(name) for name in names}
        self.current = self.all[names[0]]

    def switch(self, name: str) -> None:
        """From now on requests count in `name`; returns once the previous phase's requests
        are all answered, so that none of them sees what the next phase does."""
        with self.lock:
            previous, self.current = self.current, self.all[name]
        deadline = time.monotonic() + 30
        while previous.in_flight and time.monotonic() < deadline:
            time.sleep(0.01)

    def acked(self) -> dict[int, str]:
        with self.lock:
            return {i: t for phase in self.all.values() for i, t in phase.acked.items()}


class Load:
    """Client threads through the balancer: each creates a task with a unique title and reads
    it back, again and again, counting every request and every failure."""

    def __init__(self, base: str, headers: dict[str, str], phases: Phases, run: str) -> None:
        self.base = base
        self.headers = headers
        self.phases = phases
        self.run = run
        self.stop = threading.Event()
        self.threads = [
            threading.Thread(target=self._work, args=(n,), daemon=True) for n in range(LOAD_THREADS)
        ]

    def start(self) -> None:
        for thread in self.threads:
            thread.start()

    def finish(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _work(self, n: int) -> None:
        with httpx2.Client(base_url=self.base, headers=self.headers, timeout=20) as client:
            i = 0
            while not self.stop.is_set():
                i += 1
                title = f"rollout {self.run} {n}-{i}"
                phase, created = self._request(client, "POST", "/tasks", 201, {"title": title})
                with self.phases.lock:
                    if created is None:
                        phase.unanswered.add(title)
                        continue
                    task_id = created.json()["id"]
                    phase.acked[task_id] = title
                phase, read = self._request(client, "GET", f"/tasks/{task_id}", 200)
                if read is not None and read.json().get("title") != title:
                    with self.phases.lock:
                        phase.failures.append(f"GET /tasks/{task_id}: another title")
                self.stop.wait(THINK_SECONDS)

    def _request(
        self,
        client: httpx2.Client,
        method: str,
        path: str,
        expected: int,
        body: dict[str, Any] | None = None,
    ) -> tuple[Phase, httpx2.Response | None]:
        """The phase the request counts in (the one current when it was sent), and its
        answer if it had the expected status."""
        route = "/tasks" if method == "POST" else "/tasks/{id}"
        with self.phases.lock:
            phase = self.phases.current
            phase.in_flight += 1
        began = time.monotonic()
        answer: httpx2.Response | None = None
        try:
            answer = client.request(method, path, json=body)
            failure = f"{method} {route}: {answer.status_code} {answer.text[:120]!r}"
        except httpx2.HTTPError as exc:
            failure = f"{method} {route}: {type(exc).__name__}: {exc}"
        took = time.monotonic() - began
        ok = answer is not None and answer.status_code == expected
        with self.phases.lock:
            phase.in_flight -= 1
            phase.requests += 1
            phase.slowest = max(phase.slowest, took)
            if not ok:
                phase.failures.append(f"{clock()} {failure}")
        return phase, answer if ok else None


class Stream(threading.Thread):
    """One client's event stream through the balancer: when it ends (its process stops) or
    breaks (its process dies), it opens again at once with the last id it got as
    Last-Event-ID, as EventSource does."""

    def __init__(self, n: int, url: str, headers: dict[str, str], phases: Phases) -> None:
        super().__init__(daemon=True, name=f"stream-{n}")
        self.n = n
        self.url = url
        self.headers = headers
        self.phases = phases
        self.stop = threading.Event()
        self.opened = threading.Event()
        self.last_id: str | None = None
        self.event_ids: set[str] = set()
        self.seen: set[int] = set()
        self.duplicates = 0
        self.opens = 0
        self.ended = 0
        self.broken = 0
        self.resets = 0
        self.lock = threading.Lock()

    @property
    def reconnects(self) -> int:
        return max(self.opens - 1, 0)

    def run(self) -> None:
        while not self.stop.is_set():
            headers = dict(self.headers)
            if self.last_id is not None:
                headers["Last-Event-ID"] = self.last_id
            with self.phases.lock:
                phase = self.phases.current
                phase.in_flight += 1
            try:
                reader = EventReader(self.url, headers)
            except (OSError, ValueError, IndexError) as exc:
                self._failed(phase, f"{type(exc).__name__}: {exc}")
                continue
            try:
                if reader.status != 200:
                    reader.ended.wait(5)
                    self._failed(phase, f"{reader.status} {reader.body[:120]!r}")
                    continue
                with self.phases.lock:
                    phase.in_flight -= 1
                    phase.requests += 1
                self.opens += 1
                self.opened.set()
                self._follow(reader)
            finally:
                reader.close()

    def _failed(self, phase: Phase, why: str) -> None:
        with self.phases.lock:
            phase.in_flight -= 1
            phase.requests += 1
            phase.failures.append(f"{clock()} GET /tasks/events (stream {self.n}): {why}")
        self.stop.wait(0.2)

    def _follow(self, reader: EventReader) -> None:
        while not self.stop.is_set():
            try:
                event = reader.next(timeout=0.5)
            except queue.Empty:
                continue
            except EOFError:
                if reader.broken is None:
                    self.ended += 1
                else:
                    self.broken += 1
                return
            if event.event == "reset":
                # Past the feed's retention: cannot happen on a fresh database, and would
                # lose the resumption this checks.
                self.resets += 1
                self.last_id = None
                continue
            if event.event != "change" or event.id is None:
                continue
            change = event.json()
            with self.lock:
                if event.id in self.event_ids:
                    self.duplicates += 1
                self.event_ids.add(event.id)
                if change["op"] == "upsert":
                    self.seen.add(change["task"]["id"])
            self.last_id = event.id

    def missing(self, acked: set[int]) -> set[int]:
        with self.lock:
            return acked - self.seen
