"""The storage adapter: engines, migrations and the task store."""

from __future__ import annotations

from storage.database import build_engine
from storage.errors import (
    CursorExpired,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidTask,
    PreconditionFailed,
    QuotaExceeded,
    TagNotFound,
    TaskNotFound,
)
from storage.fields import WRITABLE_FIELDS
from storage.migrate import upgrade
from storage.records import (
    Changes,
    Created,
    IfMatch,
    Page,
    Purged,
    TagCount,
    TagPage,
    Task,
    TaskQuery,
    Tombstone,
)
from storage.tasks import TaskStore

__all__ = [
    "WRITABLE_FIELDS",
    "Changes",
    "Created",
    "CursorExpired",
    "IdempotencyKeyReused",
    "IfMatch",
    "InvalidCursor",
    "InvalidTask",
    "Page",
    "PreconditionFailed",
    "Purged",
    "QuotaExceeded",
    "TagCount",
    "TagNotFound",
    "TagPage",
    "Task",
    "TaskNotFound",
    "TaskQuery",
    "TaskStore",
    "Tombstone",
    "build_engine",
    "upgrade",
]
