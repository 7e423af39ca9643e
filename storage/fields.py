"""A task's fields, declared once: which a client may write, how each value is stored and read
back, and how a snapshot carries it.

From this table come WRITABLE_FIELDS, the order of the selected columns (statements.COLUMNS)
and what a snapshot reads back (storage/snapshots.py). What stays written out for speed or for
the type checker (models.TaskRow, records.Task and Task.of, creation.new_row) is held to it by
tests/unit/test_task_fields.py, and the table to the spec's Task schema.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from storage.models import PRIORITY_NAMES, PRIORITY_RANKS


class _Marker(enum.Enum):
    IN_EVERY_SNAPSHOT = enum.auto()


IN_EVERY_SNAPSHOT = _Marker.IN_EVERY_SNAPSHOT

# How a snapshot (JSON) carries a value: as is, as an ISO 8601 instant, or as seconds.
Kind = Literal["plain", "instant", "duration"]


def _as_is(value: Any) -> Any:
    return value


def _strip(value: Any) -> Any:
    return value.strip()


def _rank(value: Any) -> Any:
    return PRIORITY_RANKS[value]


def _priority_name(rank: Any) -> Any:
    return PRIORITY_NAMES[rank]


def _seconds(value: Any) -> Any:
    return int(value.total_seconds())


def _duration(seconds: Any) -> Any:
    return dt.timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Field:
    name: str
    # How a client's value is stored in the column; None where a client may not write it.
    write: Callable[[Any], Any] | None = None
    # How the column's value is read back into a Task (Task.of does the same, written out).
    # Both are for a value that is not None: None is stored, and read, as None.
    read: Callable[[Any], Any] = _as_is
    kind: Kind = "plain"
    # What a snapshot stored before the field existed answers for it.
    absent: Any = IN_EVERY_SNAPSHOT


# In the order of records.Task, of the spec's Task properties, and of the table's columns (which
# go on with those no answer carries). `version` is the ETag, not a property.
FIELDS: tuple[Field, ...] = (
    Field("id"),
    Field("user_id"),
    Field("title", write=_strip),
    Field("description", write=_as_is),
    Field("completed", write=bool),
    Field("priority", write=_rank, read=_priority_name),
    Field("tags", write=list, read=list),
    Field("due_date", write=_as_is, kind="instant"),
    Field("created_at", kind="instant"),
    Field("updated_at", kind="instant"),
    Field("completed_at", kind="instant"),
    Field("version"),
    Field("recurrence", write=_as_is, absent=None),
    Field("timezone", write=_as_is, absent="UTC"),
    Field("series_id", absent=None),
    Field("next_task_id", absent=None),
    Field("remind_before", write=_seconds, read=_duration, kind="duration", absent=None),
    Field("remind_at", kind="instant", absent=None),
)

NAMES: tuple[str, ...] = tuple(field.name for field in FIELDS)

# The fields a client may write, each with how its value is stored. This explicit list is the
# only way request data reaches a row (no Model(**body)); a test keeps it equal to the spec's.
WRITABLE_FIELDS: dict[str, Callable[[Any], Any]] = {
    field.name: field.write for field in FIELDS if field.write is not None
}


def column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """Writable fields as their columns store them; ValueError for any other field."""
    unknown = set(fields) - set(WRITABLE_FIELDS)
    if unknown:
        raise ValueError(f"not writable: {sorted(unknown)}")
    return {
        name: None if value is None else WRITABLE_FIELDS[name](value)
        for name, value in fields.items()
    }


def complete_column_values(fields: Mapping[str, Any]) -> dict[str, Any]:
    """column_values of a complete set of writable fields (a create's); ValueError otherwise."""
    values = column_values(fields)
    missing = set(WRITABLE_FIELDS) - set(values)
    if missing:
        raise ValueError(f"missing fields: {sorted(missing)}")
    return values
