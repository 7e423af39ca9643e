"""Tasks as stored answers: what an idempotent create replays, and the request it answered."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from storage.records import Task

_TIMES = ("due_date", "created_at", "updated_at", "completed_at", "remind_at")
# What a snapshot stored before these fields existed answers for them.
_LATER_FIELDS: dict[str, Any] = {
    "recurrence": None,
    "timezone": "UTC",
    "series_id": None,
    "next_task_id": None,
    "remind_before": None,
    "remind_at": None,
}


def _default(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return value.total_seconds()
    raise TypeError(f"not JSON: {type(value).__name__}")


def fingerprint(fields: Mapping[str, Any]) -> str:
    """A digest of what a create asked for: the same request always gives the same one."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=_default)
    return hashlib.sha256(canonical.encode()).hexdigest()


def dump(task: Task) -> str:
    return json.dumps(dataclasses.asdict(task), default=_default)


def load(snapshot: str, task_type: type[Task]) -> Task:
    data = _LATER_FIELDS | json.loads(snapshot)
    if data["remind_before"] is not None:
        data["remind_before"] = dt.timedelta(seconds=data["remind_before"])
    for name in _TIMES:
        if data[name] is not None:
            data[name] = dt.datetime.fromisoformat(data[name])
    return task_type(**data)
