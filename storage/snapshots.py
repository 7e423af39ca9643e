"""Tasks as stored answers: what an idempotent create replays, and the request it answered."""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from storage.fields import FIELDS, IN_EVERY_SNAPSHOT
from storage.records import Task

_INSTANTS = tuple(field.name for field in FIELDS if field.kind == "instant")
_DURATIONS = tuple(field.name for field in FIELDS if field.kind == "duration")
# What a snapshot stored before these fields existed answers for them.
_LATER_FIELDS: dict[str, Any] = {
    field.name: field.absent for field in FIELDS if field.absent is not IN_EVERY_SNAPSHOT
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
    for name in _DURATIONS:
        if data[name] is not None:
            data[name] = dt.timedelta(seconds=data[name])
    for name in _INSTANTS:
        if data[name] is not None:
            data[name] = dt.datetime.fromisoformat(data[name])
    return task_type(**data)
