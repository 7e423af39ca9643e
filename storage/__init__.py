"""The storage adapter: engines, migrations and the task store."""

from __future__ import annotations

from storage.database import PoolSettings, build_engine
from storage.errors import InvalidCursor, QuotaExceeded, TaskNotFound
from storage.migrate import upgrade
from storage.tasks import WRITABLE_FIELDS, Page, Task, TaskQuery, TaskStore

__all__ = [
    "WRITABLE_FIELDS",
    "InvalidCursor",
    "Page",
    "PoolSettings",
    "QuotaExceeded",
    "Task",
    "TaskNotFound",
    "TaskQuery",
    "TaskStore",
    "build_engine",
    "upgrade",
]
