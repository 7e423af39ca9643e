"""What checking a credential raises; todo_api/web/problems.py answers each (401, 503)."""

from __future__ import annotations


class Unauthenticated(Exception):
    """The credential is not good here; `detail` says why, for the developer wiring a client."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class InvalidTicket(Unauthenticated):
    """A stream ticket that is unknown, already used, expired, or another user's."""

    def __init__(self) -> None:
        super().__init__("Invalid ticket: unknown, already used, or expired")


class CredentialsUncheckable(Exception):
    """What checks a credential (Better Auth's keys or sessions) cannot be reached now: the
    client should retry after `retry_after` seconds, not sign out."""

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after
