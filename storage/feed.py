"""The changes feed's opaque cursor: a position in one user's change sequence."""

from __future__ import annotations

from storage import opaque
from storage.errors import InvalidCursor

_NOT_OURS = "The cursor is not one this API issued for the changes feed."


def encode(seq: int) -> str:
    return opaque.dump({"after": seq})


def decode(cursor: str) -> int:
    seq = opaque.load(cursor, {"after"}, _NOT_OURS)["after"]
    if type(seq) is not int or not 0 <= seq < 2**63:
        raise InvalidCursor(_NOT_OURS)
    return seq
