"""Response bodies serialised with orjson: Connexion's jsonifier is its one public way in."""

from __future__ import annotations

import datetime as dt
import decimal
import uuid
from typing import Any

import orjson
from connexion.jsonifier import Jsonifier


def _default(value: Any) -> Any:
    # What Connexion's own encoder adds to JSON's types (handlers send JSON's types already).
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class OrjsonJsonifier(Jsonifier):  # type: ignore[misc]  # Connexion is untyped
    """Bodies as compact UTF-8 JSON ending in a newline, as Connexion's own end in one."""

    def dumps(self, data: Any, **_kwargs: Any) -> bytes:
        return orjson.dumps(
            data,
            default=_default,
            option=orjson.OPT_APPEND_NEWLINE | orjson.OPT_PASSTHROUGH_DATETIME,
        )
