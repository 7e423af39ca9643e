"""A client's copy of a user's tasks, kept by applying the changes feed."""

from __future__ import annotations

from typing import Any


def apply_changes(replica: dict[int, dict[str, Any]], page: dict[str, Any]) -> None:
    """Apply one page of `GET .../tasks/changes` as a frontend would."""
    for change in page["changes"]:
        if change["op"] == "upsert":
            replica[change["task"]["id"]] = change["task"]
        else:
            replica.pop(change["id"], None)
