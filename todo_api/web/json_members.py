"""Objects whose member names are unique, as I-JSON (RFC 7493 section 2.3) requires.

JSON parsers differ on `{"title": "a", "title": "b"}`: most keep the last, some the first,
some refuse. A body that two of them could read two ways is refused instead, at any depth.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

DETAIL = "is a member name used more than once in its object"


class DuplicateMember(Exception):
    """An object of the body names a member more than once. Not a ValueError: the JSON is
    well-formed, and is answered 422, not as a syntax error."""


def unique_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """`json.loads`'s object_pairs_hook: the object, or DuplicateMember."""
    members = dict(pairs)
    if len(members) != len(pairs):
        raise DuplicateMember
    return members


class _Marked(dict[str, Any]):
    """An object as parsed, with the names it used more than once."""

    duplicated: list[str]


def marking_members(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object_pairs_hook that keeps every object, marking the names used twice: for a body
    already known to have some, to say where they all are."""
    members = _Marked(pairs)
    seen: set[str] = set()
    members.duplicated = []
    for name, _ in pairs:
        if name in seen and name not in members.duplicated:
            members.duplicated.append(name)
        seen.add(name)
    return members


def duplicated_paths(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """The path of every name used twice in `value`, as parsed with `marking_members`."""
    if isinstance(value, dict):
        if isinstance(value, _Marked):
            for name in value.duplicated:
                yield (*path, name)
        for name, item in value.items():
            yield from duplicated_paths(item, (*path, name))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from duplicated_paths(item, (*path, index))
