"""The changes feed's opaque cursor: a position in one user's change sequence."""

from __future__ import annotations

import base64
import binascii
import json

from storage.errors import InvalidCursor

_NOT_OURS = "The cursor is not one this API issued for the changes feed."


def encode(seq: int) -> str:
    raw = json.dumps({"after": seq}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def decode(cursor: str) -> int:
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidCursor(_NOT_OURS) from exc
    if not isinstance(data, dict) or set(data) != {"after"}:
        raise InvalidCursor(_NOT_OURS)
    seq = data["after"]
    if type(seq) is not int or not 0 <= seq < 2**63:
        raise InvalidCursor(_NOT_OURS)
    return seq
