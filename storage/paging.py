"""Keyset paging: sort keys, the seek condition, and the opaque cursor that carries a position."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal
from sqlalchemy.orm import InstrumentedAttribute

from storage import opaque
from storage.errors import InvalidCursor
from storage.models import PRIORITY_NAMES, TaskRow, UTCDateTime

# Stands in for a missing due date among undated tasks only (they sort after a flag), so any
# instant that every driver can read back in any session time zone will do.
_UNDATED = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# What a key decoded from a cursor may be: text a database can compare (no NUL, no surrogate).
_TEXT = re.compile(r"[^\x00\ud800-\udfff]{0,800}")


def sort_keys(sort: str) -> tuple[ColumnElement[Any] | InstrumentedAttribute[Any], ...]:
    """The expressions a sort orders by, before the id that breaks ties."""
    if sort == "created":
        return (TaskRow.created_at,)
    if sort == "updated":
        return (TaskRow.updated_at,)
    if sort == "title":
        # People expect "apple, Banana, cherry", not every capital before every small letter.
        return (func.lower(TaskRow.title),)
    if sort == "priority":
        return (TaskRow.priority,)
    if sort == "due_date":
        # Undated tasks last ascending (first descending), whatever dates the others have.
        undated = case((TaskRow.due_date.is_(None), 1), else_=0)
        return (undated, func.coalesce(TaskRow.due_date, literal(_UNDATED, UTCDateTime)))
    raise ValueError(f"unknown sort {sort!r}")


def _instant(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("naive timestamp")
    return parsed.astimezone(dt.UTC)


def _text(value: Any) -> str:
    if not isinstance(value, str) or not _TEXT.fullmatch(value):
        raise ValueError("not a usable text key")
    return value


def _priority(value: Any) -> int:
    if type(value) is not int or value not in PRIORITY_NAMES:
        raise ValueError("not a priority rank")
    return value


def _flag(value: Any) -> int:
    if type(value) is not int or value not in (0, 1):
        raise ValueError("not a flag")
    return value


# How each sort's key values travel in a cursor, one reader per key.
_READERS: dict[str, tuple[Callable[[Any], Any], ...]] = {
    "created": (_instant,),
    "updated": (_instant,),
    "title": (_text,),
    "priority": (_priority,),
    "due_date": (_flag, _instant),
}
_NOT_OURS = "The cursor is not one this API issued."


@dataclass(frozen=True)
class Position:
    """The last task of a page: its sort key values (as the database computed them) and id."""

    sort: str
    order: str
    keys: tuple[Any, ...]
    id: int

    def parameters(self) -> dict[str, Any]:
        """The values of the seek condition (storage.statements.list_page with `after`)."""
        keys = {f"after_{n}": value for n, value in enumerate(self.keys)}
        return keys | {"after_id": self.id}

    def encode(self) -> str:
        keys = [k.isoformat() if isinstance(k, dt.datetime) else k for k in self.keys]
        return opaque.dump({"s": self.sort, "o": self.order, "k": keys, "i": self.id})

    @classmethod
    def decode(cls, cursor: str, sort: str, order: str) -> Position:
        data = opaque.load(cursor, {"s", "o", "k", "i"}, _NOT_OURS)
        if data["s"] != sort or data["o"] != order:
            raise InvalidCursor(
                f"The cursor was made for sort={data['s']}&order={data['o']}; "
                f"start again without a cursor to sort by {sort} {order}."
            )
        task_id, keys, readers = data["i"], data["k"], _READERS[sort]
        if type(task_id) is not int or not 1 <= task_id < 2**63:
            raise InvalidCursor(_NOT_OURS)
        if not isinstance(keys, list) or len(keys) != len(readers):
            raise InvalidCursor(_NOT_OURS)
        try:
            values = tuple(read(key) for read, key in zip(readers, keys, strict=True))
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidCursor(_NOT_OURS) from exc
        return cls(sort=sort, order=order, keys=values, id=task_id)
