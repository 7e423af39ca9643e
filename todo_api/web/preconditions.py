"""Conditional requests (RFC 9110 section 13): If-Match on writes, If-None-Match on reads.

The spec's header patterns have already refused a malformed list of entity tags.
"""

from __future__ import annotations

import re

from starlette.datastructures import Headers

from storage import IfMatch
from todo_api.web.representation import version_in

_ENTITY_TAG = re.compile(r'(W/)?"([^"]*)"')


def _header(headers: Headers, name: str) -> str | None:
    # Several fields of one name are one comma-separated list (RFC 9110 section 5.3).
    values = headers.getlist(name)
    return ", ".join(values) if values else None


def _tags(header: str) -> list[tuple[bool, str]]:
    return [(bool(weak), opaque) for weak, opaque in _ENTITY_TAG.findall(header)]


def if_match(task_id: int, headers: Headers) -> IfMatch | None:
    """The versions of the task a write may apply to, from `If-Match`; None without one."""
    header = _header(headers, "if-match")
    if header is None:
        return None
    if header.strip() == "*":
        return IfMatch(versions=None)
    # Strong comparison: a weak tag never matches.
    versions = {version_in(opaque, task_id) for weak, opaque in _tags(header) if not weak}
    return IfMatch(versions=frozenset(v for v in versions if v is not None))


def none_match(current_etag: str, headers: Headers) -> bool:
    """Whether `If-None-Match` names the current representation (weak comparison)."""
    header = _header(headers, "if-none-match")
    if header is None:
        return False
    if header.strip() == "*":
        return True
    current = current_etag.removeprefix("W/")
    return any(f'"{opaque}"' == current for _weak, opaque in _tags(header))
