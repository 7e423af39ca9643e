"""What the storage API raises for a caller's mistake (todo_api/web/problems.py answers each)."""

from __future__ import annotations

from storage.records import Task


class TaskNotFound(LookupError):
    """No such task for this user; another user's task is reported the same way."""


class InvalidCursor(ValueError):
    """A paging cursor that does not decode, or was made for another sort or order.

    `parameter` names where the client sent it (a stream also takes `Last-Event-ID`)."""

    parameter = "cursor"


class QuotaExceeded(Exception):
    """The user already has as many tasks as one user may keep."""

    def __init__(self, quota: int) -> None:
        super().__init__(quota)
        self.quota = quota


class PreconditionFailed(Exception):
    """A conditional write named a version the task no longer has; nothing was written."""

    def __init__(self, current: Task) -> None:
        super().__init__(current.id)
        self.current = current


class CursorExpired(Exception):
    """A changes-feed cursor from before a purge of deletions (or from another database)."""


class IdempotencyKeyReused(Exception):
    """An Idempotency-Key sent again with a different request."""


class InvalidTask(Exception):
    """A write that would leave the task inconsistent (a recurrence without a due date);
    nothing was written. `pointer` names the request field to change."""

    def __init__(self, pointer: str, detail: str) -> None:
        super().__init__(detail)
        self.pointer = pointer
        self.detail = detail


class TagNotFound(LookupError):
    """None of the user's tasks carries this tag."""


class ConversationNotFound(LookupError):
    """No such conversation (or message in it) for this user; another user's is reported the
    same way."""

    def __init__(self, identifier: str, what: str = "conversation") -> None:
        super().__init__(identifier)
        self.what = what


class ChatQuotaExceeded(Exception):
    """The user already keeps as many conversations, or messages, as one user may."""

    def __init__(self, what: str, quota: int) -> None:
        super().__init__(what, quota)
        self.what = what
        self.quota = quota
