"""Idempotency keys: a create sent with a key is made at most once per (user, key) while the key
lives, and a retry is answered what the first was (storage/creation.py runs the create).

A user's live keys are counted in the owner's row and bounded by the quota: past it, a keyed
create forgets the user's oldest keys before they expire.
"""

from __future__ import annotations

import datetime as dt
from functools import cache

from sqlalchemy import Connection, Insert, Integer, Row, bindparam, delete, select, update

from storage import snapshots
from storage.models import IdempotencyKeyRow
from storage.quota import forget_keys, keys_past_quota, lock_owner
from storage.records import Task
from storage.statements import NOW, OWNER, insert_ignoring_conflict

_idempotency_key = bindparam("idempotency_key", type_=IdempotencyKeyRow.key.type)
_how_many = bindparam("how_many", type_=Integer())
_THE_KEY = (IdempotencyKeyRow.user_id == OWNER, IdempotencyKeyRow.key == _idempotency_key)

_DELETE_EXPIRED_KEYS = (
    delete(IdempotencyKeyRow)
    .where(IdempotencyKeyRow.user_id == OWNER, IdempotencyKeyRow.expires_at <= NOW)
    .returning(IdempotencyKeyRow.key)
)
# Run with `response` as a parameter: the column it sets.
_KEEP_RESPONSE = update(IdempotencyKeyRow).where(*_THE_KEY)
_EARLIER_REQUEST = select(IdempotencyKeyRow.fingerprint, IdempotencyKeyRow.response).where(
    *_THE_KEY
)
_oldest_keys = (
    select(IdempotencyKeyRow.key)
    .where(IdempotencyKeyRow.user_id == OWNER, IdempotencyKeyRow.key != _idempotency_key)
    .order_by(IdempotencyKeyRow.expires_at, IdempotencyKeyRow.key)
    .limit(_how_many)
    .scalar_subquery()
)
# Run with the key just claimed as `idempotency_key`, which is never among the forgotten.
_FORGET_OLDEST_KEYS = (
    delete(IdempotencyKeyRow)
    .where(IdempotencyKeyRow.user_id == OWNER, IdempotencyKeyRow.key.in_(_oldest_keys))
    .returning(IdempotencyKeyRow.key)
)
USERS_WITH_EXPIRED_KEYS = (
    select(IdempotencyKeyRow.user_id).where(IdempotencyKeyRow.expires_at <= NOW).distinct()
)


@cache
def _claim(dialect: str) -> Insert:
    statement = insert_ignoring_conflict(dialect, IdempotencyKeyRow, ("user_id", "key"))
    return statement.returning(IdempotencyKeyRow.key)


def claim(
    connection: Connection,
    dialect: str,
    user_id: str,
    key: str,
    fingerprint: str,
    expires_at: dt.datetime,
) -> bool:
    """Claim the key for a create, under its primary key: a concurrent request with the same
    key waits for this transaction. False if the key is taken (by an earlier request)."""
    claim = {
        "user_id": user_id,
        "key": key,
        "fingerprint": fingerprint,
        "response": "",
        "expires_at": expires_at,
    }
    return connection.execute(_claim(dialect), claim).one_or_none() is not None


def keep_response(connection: Connection, user_id: str, key: str, task: Task) -> None:
    """Keep the task a claimed key's create made, for a retry to be answered the same."""
    the_key = {"owner": user_id, "idempotency_key": key, "response": snapshots.dump(task)}
    connection.execute(_KEEP_RESPONSE, the_key)


def earlier_request(connection: Connection, user_id: str, key: str) -> Row[str, str] | None:
    """The `fingerprint` and `response` of the request that holds the key, if any."""
    the_key = {"owner": user_id, "idempotency_key": key}
    return connection.execute(_EARLIER_REQUEST, the_key).one_or_none()


def delete_expired_keys(connection: Connection, user_id: str, now: dt.datetime) -> int:
    """Delete the user's idempotency keys that have expired; how many there were.

    The owner's row is locked first, as every write of the user's locks it before any key
    row: a keyed create forgets the oldest keys while it holds the owner's row, and a retry
    with the same key waits for the first request's claim.
    """
    lock_owner(connection, user_id)
    expired = connection.execute(_DELETE_EXPIRED_KEYS, {"owner": user_id, "now": now})
    return forget_keys(connection, user_id, len(expired.all()))


def forget_keys_past_quota(
    connection: Connection, user_id: str, key: str, key_count: int, quota: int
) -> None:
    """Past the quota's number of live keys, forget the user's oldest (never `key`, the one
    just claimed)."""
    excess = keys_past_quota(key_count, quota)
    if excess:
        oldest = {"owner": user_id, "idempotency_key": key, "how_many": excess}
        forgotten = connection.execute(_FORGET_OLDEST_KEYS, oldest).all()
        forget_keys(connection, user_id, len(forgotten))
