"""How tasks and changes look on the wire, and the entity tags that name those looks."""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from typing import Any, TypeAlias

from connexion.lifecycle import ConnexionResponse

from storage import Changes, TagCount, Task, TaskQuery, Tombstone
from storage.conversations import Conversation, Message
from todo_api.contract import task_properties

# A task's strong tag names the task and its write count: "17-3". No leading zeros, so that a
# tag that matches is the very string this API sent (strong comparison is character by character).
_TASK_TAG = re.compile(r"([1-9][0-9]{0,18})-([1-9][0-9]{0,9})")
# What the version column can hold; a larger number is no version of any task.
_MAX_VERSION = 2**31 - 1

# What a handler answers: a body, a status and headers, or a response made whole.
Response: TypeAlias = tuple[Any, int, dict[str, str]] | ConnexionResponse
# Every operation also declares problem+json answers, so Connexion must be told which one this is.
JSON = {"Content-Type": "application/json"}


def task_json(task: Task) -> dict[str, Any]:
    """The task's fields the spec's Task schema names, and no other."""
    return {name: _wire(getattr(task, name)) for name in task_properties()}


def tag_json(tag: TagCount) -> dict[str, Any]:
    return {"tag": tag.tag, "pending": tag.pending, "completed": tag.completed}


def changes_json(page: Changes) -> dict[str, Any]:
    return {
        "changes": [change_json(change) for change in page.changes],
        "cursor": page.cursor,
        "has_more": page.has_more,
    }


def change_json(change: Task | Tombstone) -> dict[str, Any]:
    if isinstance(change, Tombstone):
        return {"op": "delete", "id": change.id, "deleted_at": rfc3339(change.deleted_at)}
    return {"op": "upsert", "task": task_json(change)}


def task_etag(task: Task) -> str:
    return f'"{task.id}-{task.version}"'


def version_in(opaque_tag: str, task_id: int) -> int | None:
    """The version a strong tag of `task_id` names; None for any other tag."""
    match = _TASK_TAG.fullmatch(opaque_tag)
    if match is None or int(match[1]) != task_id or int(match[2]) > _MAX_VERSION:
        return None
    return int(match[2])


def list_etag(user: str, as_of: int, path: str, query: TaskQuery) -> str:
    """Weak: the page is the same for as long as the user's change sequence stands still.

    The user is part of the tag: two users with as many writes must not share one, or a
    frontend cache keyed by URL would answer one account's list with the other's.
    """
    named = repr((user, path, query)).encode()
    digest = hashlib.blake2b(named, digest_size=8).hexdigest()
    return f'W/"{as_of}-{digest}"'


def _wire(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return rfc3339(value)
    if isinstance(value, dt.timedelta):
        return duration_text(value)
    return value


def duration_text(value: dt.timedelta) -> str:
    """The normalised form: days, then a time part; `PT0S` for none."""
    days, rest = divmod(int(value.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    time = "".join(f"{n}{unit}" for n, unit in ((hours, "H"), (minutes, "M"), (seconds, "S")) if n)
    text = "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
    return text if text != "P" else "PT0S"


def rfc3339(value: dt.datetime) -> str:
    # isoformat, unlike strftime, pads years before 1000 to the four digits RFC 3339 requires.
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def conversation_json(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.id,
        "title": conversation.title,
        "created_at": rfc3339(conversation.created_at),
        "updated_at": rfc3339(conversation.updated_at),
    }


def message_json(message: Message) -> dict[str, Any]:
    return {
        "id": message.id,
        "conversation_id": message.conversation_id,
        # A ChatKit item that is no message of either (a widget, a task) reads as the agent's.
        "role": "user" if message.role == "user" else "assistant",
        "content": message.content,
        "tool_calls": message.tool_calls,
        "created_at": rfc3339(message.created_at),
    }
