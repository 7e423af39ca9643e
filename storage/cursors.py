"""Opaque cursors: where a page of a list ends, and where a client is in the changes feed.

Each is a small JSON object, base64url without padding, read back strictly: a cursor this API
did not issue is an InvalidCursor, never a value that reaches a query unchecked.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from storage.errors import InvalidCursor
from storage.models import PRIORITY_NAMES

# What a key decoded from a cursor may be: text a database can compare (no NUL, no surrogate).
_TEXT = re.compile(r"[^\x00\ud800-\udfff]{0,800}")
_NOT_IN_FEED = "The cursor is not one this API issued for the changes feed."


def feed_cursor(seq: int) -> str:
    """The changes-feed cursor just after the user's change number `seq`."""
    return _dump({"after": seq})


def feed_position(cursor: str) -> int:
    """The change number a changes-feed cursor stands after."""
    seq = _load(cursor, {"after"}, _NOT_IN_FEED)["after"]
    if type(seq) is not int or not 0 <= seq < 2**63:
        raise InvalidCursor(_NOT_IN_FEED)
    return seq


_NOT_IN_TAGS = "The cursor is not one this API issued for the list of tags."


def tag_cursor(uses: int, tag: str) -> str:
    """The position after a tag used by `uses` tasks, in the list of tags."""
    return _dump({"uses": uses, "tag": tag})


def tag_position(cursor: str) -> tuple[int, str]:
    data = _load(cursor, {"uses", "tag"}, _NOT_IN_TAGS)
    uses, tag = data["uses"], data["tag"]
    if type(uses) is not int or not 0 < uses < 2**31 or not isinstance(tag, str):
        raise InvalidCursor(_NOT_IN_TAGS)
    if not _TEXT.fullmatch(tag):
        raise InvalidCursor(_NOT_IN_TAGS)
    return uses, tag


def _dump(data: dict[str, Any]) -> str:
    # UTF-8, not \uXXXX escapes: an emoji is 4 bytes rather than 12, so that a cursor carrying
    # the longest title fits the spec's bound on the cursor parameter.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def _load(cursor: str, fields: set[str], not_ours: str) -> dict[str, Any]:
    """The object a cursor holds, with exactly these fields; InvalidCursor for anything else."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidCursor(not_ours) from exc
    if not isinstance(data, dict) or set(data) != fields:
        raise InvalidCursor(not_ours)
    return data


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
_NOT_A_PAGE = "The cursor is not one this API issued."


@dataclass(frozen=True)
class Position:
    """The last task of a page: its sort key values (as the database computed them) and id."""

    sort: str
    order: str
    keys: tuple[Any, ...]
    id: int

    def encode(self) -> str:
        keys = [k.isoformat() if isinstance(k, dt.datetime) else k for k in self.keys]
        return _dump({"s": self.sort, "o": self.order, "k": keys, "i": self.id})

    @classmethod
    def decode(cls, cursor: str, sort: str, order: str) -> Position:
        data = _load(cursor, {"s", "o", "k", "i"}, _NOT_A_PAGE)
        if data["s"] != sort or data["o"] != order:
            raise InvalidCursor(
                f"The cursor was made for sort={data['s']}&order={data['o']}; "
                f"start again without a cursor to sort by {sort} {order}."
            )
        task_id, keys, readers = data["i"], data["k"], _READERS[sort]
        if type(task_id) is not int or not 1 <= task_id < 2**63:
            raise InvalidCursor(_NOT_A_PAGE)
        if not isinstance(keys, list) or len(keys) != len(readers):
            raise InvalidCursor(_NOT_A_PAGE)
        try:
            values = tuple(read(key) for read, key in zip(readers, keys, strict=True))
        except (TypeError, ValueError, OverflowError) as exc:
            raise InvalidCursor(_NOT_A_PAGE) from exc
        return cls(sort=sort, order=order, keys=values, id=task_id)


_NOT_IN_CONVERSATIONS = "The cursor is not one this API issued for the list of conversations."


def conversation_cursor(created_at: dt.datetime, conversation_id: str) -> str:
    """The position after a conversation, in the list of conversations (newest first)."""
    return _dump({"c": created_at.isoformat(), "i": conversation_id})


def conversation_position(cursor: str) -> tuple[dt.datetime, str]:
    data = _load(cursor, {"c", "i"}, _NOT_IN_CONVERSATIONS)
    try:
        return _instant(data["c"]), _text(data["i"])
    except (TypeError, ValueError, OverflowError) as exc:
        raise InvalidCursor(_NOT_IN_CONVERSATIONS) from exc


_NOT_IN_MESSAGES = "The cursor is not one this API issued for a conversation's messages."


def message_cursor(seq: int) -> str:
    """The position after a message, in its conversation's messages."""
    return _dump({"m": seq})


def message_position(cursor: str) -> int:
    seq = _load(cursor, {"m"}, _NOT_IN_MESSAGES)["m"]
    if type(seq) is not int or not 0 <= seq < 2**63:
        raise InvalidCursor(_NOT_IN_MESSAGES)
    return seq
