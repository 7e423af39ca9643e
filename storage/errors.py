"""What the storage API raises for a caller's mistake (handlers map these to problems)."""

from __future__ import annotations


class TaskNotFound(LookupError):
    """No such task for this user; another user's task is reported the same way."""


class InvalidCursor(ValueError):
    """A paging cursor that does not decode, or was made for another sort or order."""


class QuotaExceeded(Exception):
    """The user already has as many tasks as one user may keep."""

    def __init__(self, quota: int) -> None:
        super().__init__(quota)
        self.quota = quota
