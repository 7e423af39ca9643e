"""Single-use tickets that open a user's event stream (for a browser's EventSource)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

from sqlalchemy import Engine, String, bindparam, delete, insert, select

from storage.models import StreamTicketRow
from storage.statements import NOW

_INSERT_TICKET = insert(StreamTicketRow)
_GOOD_TICKET = (
    StreamTicketRow.digest == bindparam("digest", type_=String()),
    StreamTicketRow.expires_at > NOW,
)
_CHECK_TICKET = select(StreamTicketRow.user_id, StreamTicketRow.credential_expires_at).where(
    *_GOOD_TICKET
)
# Redeeming deletes: a ticket is good once, whichever request or process comes first.
_REDEEM_TICKET = (
    delete(StreamTicketRow)
    .where(*_GOOD_TICKET, StreamTicketRow.user_id == bindparam("user_id", type_=String()))
    .returning(StreamTicketRow.user_id, StreamTicketRow.credential_expires_at)
)
_DELETE_EXPIRED_TICKETS = delete(StreamTicketRow).where(StreamTicketRow.expires_at <= NOW)


@dataclass(frozen=True)
class Ticket:
    value: str
    expires_at: dt.datetime


@dataclass(frozen=True)
class Redeemed:
    user_id: str
    # When the credential that asked for the ticket expires, if it does.
    credential_expires_at: dt.datetime | None


class TicketStore:
    """Tickets live in the database, so that any server process can redeem one that another
    issued; only a digest is stored, and redeeming deletes the row (one use, atomically)."""

    def __init__(self, engine: Engine, lifetime: dt.timedelta) -> None:
        self._engine = engine
        self._lifetime = lifetime

    def issue(self, user_id: str, credential_expires_at: dt.datetime | None) -> Ticket:
        now = dt.datetime.now(dt.UTC)
        value = secrets.token_urlsafe(32)
        expires_at = now + self._lifetime
        if credential_expires_at is not None:
            expires_at = min(expires_at, credential_expires_at)
        with self._engine.begin() as connection:
            # Opportunistic, and cheap by the index: expired tickets never pile up.
            connection.execute(_DELETE_EXPIRED_TICKETS, {"now": now})
            connection.execute(
                _INSERT_TICKET,
                {
                    "digest": _digest(value),
                    "user_id": user_id,
                    "expires_at": expires_at,
                    "credential_expires_at": credential_expires_at,
                },
            )
        return Ticket(value, expires_at)

    def check(self, value: str) -> Redeemed | None:
        """The ticket's user, if it is good now; None for a ticket that is unknown, used or
        expired. Checking spends nothing: a request refused after it leaves the ticket good."""
        now = dt.datetime.now(dt.UTC)
        with self._engine.connect() as connection:
            row = connection.execute(
                _CHECK_TICKET, {"digest": _digest(value), "now": now}
            ).one_or_none()
        return None if row is None else Redeemed(row.user_id, row.credential_expires_at)

    def redeem(self, value: str, user_id: str) -> Redeemed | None:
        """The user's ticket, spent: of all the requests that present it, one gets it, once;
        None for a ticket that is unknown, used, expired, or another user's."""
        now = dt.datetime.now(dt.UTC)
        with self._engine.begin() as connection:
            row = connection.execute(
                _REDEEM_TICKET, {"digest": _digest(value), "now": now, "user_id": user_id}
            ).one_or_none()
        return None if row is None else Redeemed(row.user_id, row.credential_expires_at)


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()
