"""The tag use cases: a user's tags counted, and renamed across all of the user's tasks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from storage import TagCount, TagPage, TaskStore
from todo_api.usecases import fields


def list_tags(store: TaskStore, user: str, limit: int, cursor: str | None = None) -> TagPage:
    return store.list_tags(user, limit, cursor)


def rename_tag(store: TaskStore, user: str, tag: str, body: Mapping[str, Any]) -> TagCount:
    """A tag is read in NFC and trimmed, as the spec's Tag states; the new name is bounded."""
    to = fields.tag(body["to"], "#/to")
    return store.rename_tag(user, fields.tag(tag), to)
