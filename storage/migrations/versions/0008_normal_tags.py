"""Stored tags in Unicode NFC and trimmed, each once per task, as the API now reads them.

Before, `café` composed and decomposed, or ` café`, were two tags. A live task whose tags
change here is written as any write is: a new version (its ETag) and a new place in its
owner's changes feed, so that clients that cached it or sync from the feed see its tags
again. A deleted task's tags are only normalised: restoring it is a write of its own.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_BATCH = 1000
_TAGS = sa.JSON().with_variant(JSONB(), "postgresql")
_tasks = sa.table(
    "tasks",
    sa.column("id", sa.BigInteger()),
    sa.column("user_id", sa.String()),
    sa.column("tags", _TAGS),
    sa.column("version", sa.Integer()),
    sa.column("seq", sa.BigInteger()),
    sa.column("deleted_at", sa.DateTime()),
)
_owners = sa.table(
    "task_owners", sa.column("user_id", sa.String()), sa.column("change_seq", sa.BigInteger())
)


def _normal(tags: list[str]) -> list[str]:
    # A copy of the rule as it stands today (todo_api/usecases/fields.py), not an import of it: a
    # migration must go on doing what it did when it was written.
    return list(dict.fromkeys(unicodedata.normalize("NFC", tag).strip() for tag in tags))


def upgrade() -> None:
    connection = op.get_bind()
    after = 0
    while True:
        # By id, a batch at a time: no table is held in memory whole.
        rows = connection.execute(
            sa.select(_tasks.c.id, _tasks.c.user_id, _tasks.c.tags, _tasks.c.deleted_at)
            .where(_tasks.c.id > after)
            .order_by(_tasks.c.id)
            .limit(_BATCH)
        ).all()
        if not rows:
            return
        after = rows[-1].id
        for row in rows:
            normal = _normal(row.tags)
            if normal == row.tags:
                continue
            values: dict[str, object] = {"tags": normal}
            if row.deleted_at is None:
                seq = connection.execute(
                    sa.update(_owners)
                    .where(_owners.c.user_id == row.user_id)
                    .values(change_seq=_owners.c.change_seq + 1)
                    .returning(_owners.c.change_seq)
                ).scalar_one_or_none()
                values["version"] = _tasks.c.version + 1
                if seq is not None:
                    values["seq"] = seq
            connection.execute(sa.update(_tasks).where(_tasks.c.id == row.id).values(values))


def downgrade() -> None:
    # Nothing to undo: tags in NFC, trimmed and once each are what 0007 stored for most
    # tasks already, and which spelling each had before is not kept.
    pass
