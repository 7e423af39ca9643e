"""Seeding the benchmark's database with COPY: many users' tasks in seconds."""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import psycopg2

from storage.cursors import Position

COPY = (
    "COPY tasks (id, user_id, title, description, completed, priority, tags, due_date, "
    "created_at, updated_at, completed_at, version, seq) FROM STDIN"
)
# The cursor that opens page 100 of 50-task pages: the position of the 4,950th task.
DEEP_PAGE_OFFSET = 99 * 50 - 1
TAGS = ('["bench"]', '["home", "work"]', "[]")


@dataclass(frozen=True)
class Owner:
    user_id: str
    first_id: int
    last_id: int
    deep_cursor: str | None


def seed(url: str, counts: dict[str, int]) -> list[Owner]:
    """`counts[user]` tasks for each user, ids in one block per user, and their owner rows."""
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    owners: list[Owner] = []
    next_id = 1
    connection = psycopg2.connect(url)
    try:
        with connection, connection.cursor() as cursor:
            for user, count in counts.items():
                rows = io.StringIO()
                for n in range(count):
                    task_id = next_id + n
                    created = (start + dt.timedelta(seconds=n)).isoformat()
                    completed = n % 3 == 0
                    rows.write(
                        f"{task_id}\t{user}\tSeeded task {n}\t"
                        f"{'A description of task ' + str(n) if n % 2 else chr(92) + 'N'}\t"
                        f"{'t' if completed else 'f'}\t{n % 3 + 1}\t{TAGS[n % 3]}\t\\N\t"
                        f"{created}\t{created}\t{created if completed else chr(92) + 'N'}\t"
                        # Each user's change sequence, as the writes would have numbered it.
                        f"1\t{n + 1}\n"
                    )
                rows.seek(0)
                cursor.copy_expert(COPY, rows)
                owners.append(Owner(user, next_id, next_id + count - 1, None))
                next_id += count
            cursor.executemany(
                "INSERT INTO task_owners (user_id, task_count, completed_count, change_seq) "
                "VALUES (%s, %s, %s, %s)",
                # Every third task is completed, from the first.
                [(user, count, (count + 2) // 3, count) for user, count in counts.items()],
            )
            cursor.execute("SELECT setval(pg_get_serial_sequence('tasks', 'id'), %s)", (next_id,))
            owners = [_with_deep_cursor(cursor, owner) for owner in owners]
        # Fresh statistics, as a long-lived production table would have.
        connection.autocommit = True
        with connection.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE tasks")
            cursor.execute("VACUUM ANALYZE task_owners")
    finally:
        connection.close()
    return owners


def _with_deep_cursor(cursor: psycopg2.extensions.cursor, owner: Owner) -> Owner:
    cursor.execute(
        "SELECT created_at, id FROM tasks WHERE user_id = %s "
        "ORDER BY created_at DESC, id DESC OFFSET %s LIMIT 1",
        (owner.user_id, DEEP_PAGE_OFFSET),
    )
    row = cursor.fetchone()
    if row is None:
        return owner
    # The service's own encoder, so that the cursor is one it issues.
    cursor_text = Position("created", "desc", (row[0].astimezone(dt.UTC),), row[1]).encode()
    return Owner(owner.user_id, owner.first_id, owner.last_id, cursor_text)
