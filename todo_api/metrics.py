"""What the service counts for Prometheus (`METRICS_ENABLED`), and the text a scrape reads.

With several worker processes, `todo-api serve` points PROMETHEUS_MULTIPROC_DIR at a directory
of its own before the workers start: prometheus-client then keeps each process's values in
files there, and a scrape of any one worker reads them all.
"""

from __future__ import annotations

import os
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy import Engine, event

MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
MEDIA_TYPE = CONTENT_TYPE_LATEST
# From a cached read (about a millisecond) to the longest any request may take: every timeout
# (database statements, Better Auth, the admission wait) ends well within 10 s.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """One set of metrics per app, in a registry of its own (a process may build several apps,
    as the tests do); the components that count hold it, or None when metrics are off."""

    def __init__(self) -> None:
        # A `_created` sample beside every counter doubles a scrape for nothing we chart.
        disable_created_metrics()  # type: ignore[no-untyped-call]  # unannotated upstream
        self.registry = registry = CollectorRegistry()
        self.requests = Counter(
            "todo_api_requests",
            "Requests answered, by method, route template and status class.",
            ["method", "route", "status"],
            registry=registry,
        )
        self.latency = Histogram(
            "todo_api_request_duration_seconds",
            "Time from a request's arrival to the end of its answer.",
            ["method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "todo_api_requests_in_flight",
            "Requests being answered now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.admission_waits = Counter(
            "todo_api_admission_waits",
            "Requests that found every admission slot taken and waited for one.",
            registry=registry,
        )
        self.admission_refusals = Counter(
            "todo_api_admission_refusals",
            "Requests refused (503) after waiting the longest for an admission slot.",
            registry=registry,
        )
        self.rate_limit_refusals = Counter(
            "todo_api_rate_limit_refusals",
            "Requests refused with 429, by the limit that refused them (user or address).",
            ["kind"],
            registry=registry,
        )
        self.auth = Counter(
            "todo_api_auth",
            "Bearer credentials checked, by kind (hs256, jwks, mcp, session, cached) and outcome "
            "(accepted, refused, unavailable).",
            ["kind", "outcome"],
            registry=registry,
        )
        self.jwks_fetches = Counter(
            "todo_api_jwks_fetches",
            "Fetches of Better Auth's signing keys, by outcome (ok, failed).",
            ["outcome"],
            registry=registry,
        )
        self.pool_checked_out = Gauge(
            "todo_api_db_pool_checked_out",
            "Database connections in use.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_overflow = Gauge(
            "todo_api_db_pool_overflow",
            "Database connections open beyond the pool's size.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.pool_timeouts = Counter(
            "todo_api_db_pool_timeouts",
            "Requests that waited DB_POOL_TIMEOUT for a database connection and got none.",
            registry=registry,
        )
        # (method, route, status class): bounded by the spec's routes and the known methods.
        self._children: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}
        self.idempotent_replays = Counter(
            "todo_api_idempotent_replays",
            "Creates answered from an earlier request with the same Idempotency-Key.",
            registry=registry,
        )
        self.precondition_failures = Counter(
            "todo_api_precondition_failures",
            "Writes refused with 412: If-Match named an older version.",
            registry=registry,
        )

        self.tool_calls = Counter(
            "todo_api_mcp_tool_calls",
            "MCP tool calls, by tool and outcome (ok; refused: its arguments or user_id; "
            "error: the rules said no; unavailable; failed).",
            ["tool", "outcome"],
            registry=registry,
        )
        self.tool_call_duration = Histogram(
            "todo_api_mcp_tool_call_duration_seconds",
            "Time an MCP tool call took, from its arguments' check to its result.",
            ["tool"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )

        self.streams_open = Gauge(
            "todo_api_streams_open",
            "Event streams open now.",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.stream_events = Counter(
            "todo_api_stream_events",
            "Events written to event streams, by kind (change, reset).",
            ["event"],
            registry=registry,
        )
        self.streams_refused = Counter(
            "todo_api_streams_refused",
            "Event streams refused at a bound, by which (user: 429, process: 503).",
            ["bound"],
            registry=registry,
        )
        self.streams_dropped = Counter(
            "todo_api_streams_dropped",
            "Event streams closed because their reader took too long to take a write.",
            registry=registry,
        )

    def count_request(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, f"{status // 100}xx")
        children = self._children.get(key)
        if children is None:
            # labels() takes a lock and builds a key each time; the few children are kept.
            children = (self.requests.labels(*key), self.latency.labels(method, route))
            self._children[key] = children
        count, latency = children
        count.inc()
        latency.observe(seconds)

    def watch_pool(self, engine: Engine) -> None:
        pool: Any = engine.pool

        def checked_out(*_: Any) -> None:
            self.pool_checked_out.inc()
            self._overflow(pool)

        def checked_in(*_: Any) -> None:
            self.pool_checked_out.dec()
            self._overflow(pool)

        event.listen(engine, "checkout", checked_out)
        event.listen(engine, "checkin", checked_in)

    def _overflow(self, pool: Any) -> None:
        # QueuePool counts from minus its size up; other pools have no overflow.
        overflow = getattr(pool, "overflow", None)
        if overflow is not None:
            self.pool_overflow.set(max(0, overflow()))

    def exposition(self) -> bytes:
        if os.environ.get(MULTIPROCESS_DIR):
            registry = CollectorRegistry()
            # prometheus-client leaves this one constructor unannotated.
            MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            return generate_latest(registry)
        return generate_latest(self.registry)
