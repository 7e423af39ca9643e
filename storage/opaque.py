"""Opaque cursors: a small JSON object, base64url without padding, read back strictly."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any

from storage.errors import InvalidCursor


def dump(data: dict[str, Any]) -> str:
    # UTF-8, not \uXXXX escapes: an emoji is 4 bytes rather than 12, so that a cursor carrying
    # the longest title fits the spec's bound on the cursor parameter.
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def load(cursor: str, fields: set[str], not_ours: str) -> dict[str, Any]:
    """The object a cursor holds, with exactly these fields; InvalidCursor for anything else."""
    try:
        data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidCursor(not_ours) from exc
    if not isinstance(data, dict) or set(data) != fields:
        raise InvalidCursor(not_ours)
    return data
