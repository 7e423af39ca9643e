"""Keyset paging: sort keys, the seek condition, and the opaque cursor that carries a position."""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, func, literal, tuple_

from storage.errors import InvalidCursor
from storage.models import TaskRow, UTCDateTime

# Undated tasks sort as if due at the end of time: last ascending, first descending.
_UNDATED = dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC)


def sort_key(sort: str) -> ColumnElement[Any]:
    if sort == "created":
        return TaskRow.created_at
    if sort == "updated":
        return TaskRow.updated_at
    if sort == "title":
        # People expect "apple, Banana, cherry", not every capital before every small letter.
        return func.lower(TaskRow.title)
    if sort == "priority":
        return TaskRow.priority
    if sort == "due_date":
        return func.coalesce(TaskRow.due_date, literal(_UNDATED, UTCDateTime))
    raise ValueError(f"unknown sort {sort!r}")


def _key_kind(sort: str) -> type:
    return {"title": str, "priority": int}.get(sort, dt.datetime)


@dataclass(frozen=True)
class Position:
    """The last task of a page: its sort key value and id."""

    sort: str
    order: str
    key: Any
    id: int

    def after(self) -> ColumnElement[bool]:
        """The rows that come after this position in its sort and order."""
        key = sort_key(self.sort)
        value: Any = self.key
        if isinstance(value, dt.datetime):
            value = literal(value, UTCDateTime)
        if self.order == "asc":
            return tuple_(key, TaskRow.id) > tuple_(value, self.id)
        return tuple_(key, TaskRow.id) < tuple_(value, self.id)

    def encode(self) -> str:
        key = self.key.isoformat() if isinstance(self.key, dt.datetime) else self.key
        raw = json.dumps({"s": self.sort, "o": self.order, "k": key, "i": self.id})
        return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()

    @classmethod
    def of(cls, row: TaskRow, key: Any, sort: str, order: str) -> Position:
        """The position of `row`, whose sort key as the database computed it is `key`."""
        return cls(sort=sort, order=order, key=key, id=row.id)

    @classmethod
    def decode(cls, cursor: str, sort: str, order: str) -> Position:
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            data = json.loads(raw)
        except (binascii.Error, ValueError) as exc:
            raise InvalidCursor("The cursor is not one this API issued.") from exc
        if not isinstance(data, dict) or set(data) != {"s", "o", "k", "i"}:
            raise InvalidCursor("The cursor is not one this API issued.")
        if data["s"] != sort or data["o"] != order:
            raise InvalidCursor(
                f"The cursor was made for sort={data['s']}&order={data['o']}; "
                f"start again without a cursor to sort by {sort} {order}."
            )
        task_id, key = data["i"], data["k"]
        if type(task_id) is not int or not 1 <= task_id < 2**63:
            raise InvalidCursor("The cursor is not one this API issued.")
        kind = _key_kind(sort)
        try:
            if kind is dt.datetime:
                key = dt.datetime.fromisoformat(key)
                if key.tzinfo is None:
                    raise ValueError("naive timestamp")
            elif type(key) is not kind:
                raise ValueError("wrong key type")
        except (TypeError, ValueError) as exc:
            raise InvalidCursor("The cursor is not one this API issued.") from exc
        return cls(sort=sort, order=order, key=key, id=task_id)
