"""The storage adapter: engines, migrations and the task store."""

from __future__ import annotations

from storage.database import PoolSettings, build_engine
from storage.errors import InvalidCursor, TaskNotFound
from storage.migrate import upgrade
from storage.tasks import WRITABLE_FIELDS, Page, Task, TaskQuery, TaskStore

__all__ = [
    "WRITABLE_FIELDS",
    "InvalidCursor",
    "Page",
    "PoolSettings",
    "Task",
    "TaskNotFound",
    "TaskQuery",
    "TaskStore",
    "build_engine",
    "upgrade",
]
