"""The storage adapter: engines, migrations and the task store."""

from __future__ import annotations

from storage.database import PoolSettings, build_engine
from storage.errors import (
    CursorExpired,
    IdempotencyKeyReused,
    InvalidCursor,
    PreconditionFailed,
    QuotaExceeded,
    TaskNotFound,
)
from storage.migrate import upgrade
from storage.records import Changes, Created, IfMatch, Page, Purged, Task, TaskQuery, Tombstone
from storage.tasks import WRITABLE_FIELDS, TaskStore

__all__ = [
    "WRITABLE_FIELDS",
    "Changes",
    "Created",
    "CursorExpired",
    "IdempotencyKeyReused",
    "IfMatch",
    "InvalidCursor",
    "Page",
    "PoolSettings",
    "PreconditionFailed",
    "Purged",
    "QuotaExceeded",
    "Task",
    "TaskNotFound",
    "TaskQuery",
    "TaskStore",
    "Tombstone",
    "build_engine",
    "upgrade",
]
