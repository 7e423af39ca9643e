"""The SQL the service runs, statement for statement, for the floor app (tests/perf/floor.py).

Copied by hand from what storage/ sends to PostgreSQL (seen with SQLAlchemy's
before_cursor_execute event), for the default list (sort=created, order=desc) and the
benchmark's writes. The floor exists to measure the cost of our Python layers, so it must run
exactly the statements the service runs: when the SQL in storage/ changes, change this file in
the same way, or ours/floor stops meaning anything. Every call runs in one transaction on a
connection from an engine built by storage.build_engine, as the service's sessions do.
"""

from __future__ import annotations

COLUMNS = (
    "tasks.id, tasks.user_id, tasks.title, tasks.description, tasks.completed, "
    "tasks.priority, tasks.tags, tasks.due_date, tasks.created_at, tasks.updated_at, "
    "tasks.completed_at, tasks.version, tasks.recurrence, tasks.timezone, tasks.series_id, "
    "tasks.next_task_id, tasks.remind_before, tasks.remind_at, tasks.seq, tasks.deleted_at, "
    "tasks.reminded_at, tasks.reminder_claimed_until"
)

# list: the owner's row (the list's ETag, and the unfiltered total), then one page (limit + 1
# rows, to know whether another page follows).
LIST_OWNER = (
    "SELECT task_owners.change_seq, task_owners.task_count, task_owners.completed_count "
    "FROM task_owners WHERE task_owners.user_id = %(user_id)s"
)
LIST_PAGE = (
    f"SELECT {COLUMNS}, tasks.created_at AS created_at__1 FROM tasks "
    "WHERE tasks.user_id = %(user_id)s AND tasks.deleted_at IS NULL "
    "ORDER BY tasks.created_at DESC, tasks.id DESC LIMIT %(limit)s"
)
LIST_PAGE_AFTER = (
    f"SELECT {COLUMNS}, tasks.created_at AS created_at__1 FROM tasks "
    "WHERE tasks.user_id = %(user_id)s AND tasks.deleted_at IS NULL "
    "AND (tasks.created_at, tasks.id) < (%(after_created)s, %(after_id)s) "
    "ORDER BY tasks.created_at DESC, tasks.id DESC LIMIT %(limit)s"
)

# get
GET = (
    f"SELECT {COLUMNS} FROM tasks WHERE tasks.id = %(id)s AND tasks.user_id = %(user_id)s "
    "AND tasks.deleted_at IS NULL"
)

# Every write that takes a change number announces it to the processes that LISTEN.
NOTIFY = (
    "pg_notify('todo_changes', CAST(task_owners.change_seq AS VARCHAR) || ':' || "
    "task_owners.user_id) AS notified"
)

# create: one statement, the owner's row (made, or counted within the quota, with the next change
# number) and the task (storage/one_trip.py); no row past the quota.
CREATE = (
    "WITH owner AS (INSERT INTO task_owners (user_id, task_count, completed_count, change_seq) "
    "SELECT %(user_id)s, 1, CAST(%(completed)s AS INTEGER), 1 WHERE 1 <= %(quota)s "
    "ON CONFLICT (user_id) DO UPDATE SET task_count = (task_owners.task_count + 1), "
    "completed_count = (task_owners.completed_count + excluded.completed_count), "
    "change_seq = (task_owners.change_seq + 1) "
    "WHERE task_owners.task_count + 1 <= %(quota)s "
    f"RETURNING task_owners.change_seq, {NOTIFY}) "
    "INSERT INTO tasks (user_id, title, description, completed, priority, tags, due_date, "
    "created_at, updated_at, completed_at, version, recurrence, timezone, series_id, "
    "next_task_id, remind_before, remind_at, seq) SELECT %(user_id)s, "
    "%(title)s, %(description)s, %(completed)s, %(priority)s, %(tags)s::JSONB, %(due_date)s, "
    "%(created_at)s, %(updated_at)s, %(completed_at)s, 1, %(recurrence)s, %(timezone)s, "
    "%(series_id)s, %(next_task_id)s, %(remind_before)s, %(remind_at)s, owner.change_seq "
    f"FROM owner RETURNING {COLUMNS}"
)

# patch and toggle: one statement, the owner's row (its next change number) and the task's
# UPDATE, which answers one row: the task (all null if the UPDATE matched nothing), the change
# number, and how far the owner's completed count moved. Only when the UPDATE matched nothing
# does the service run it AGAIN on its own, and then (still nothing) GET the task and roll back.
_OWNER_NEXT_CHANGE = (
    "WITH owner AS (UPDATE task_owners SET {owner_sets}change_seq=(task_owners.change_seq + 1) "
    "WHERE task_owners.user_id = %(user_id)s RETURNING task_owners.user_id, "
    f"task_owners.change_seq, {NOTIFY}{{moved}}), task AS ("
)
_ANSWER = (
    f" RETURNING {COLUMNS}) SELECT {COLUMNS.replace('tasks.', 'task.')}, owner.change_seq, "
    "{answer_moved} FROM owner LEFT OUTER JOIN task ON true"
)
_ONE_TASK = "WHERE tasks.id = %(id)s AND tasks.user_id = %(user_id)s AND tasks.deleted_at IS NULL"
_NOT_BEFORE_NOW = (
    "updated_at=CASE WHEN (tasks.updated_at > %(now)s) THEN tasks.updated_at ELSE %(now)s END"
)

# update (PATCH): the fields sent (only if one would change), and an updated_at that never goes
# back. `{assignments}` is "column=%(column)s, " for each field sent, from a fixed list of
# columns, and `{changes}` their "tasks.column IS DISTINCT FROM %(column)s", joined by OR (in
# parentheses if more than one).
_PATCH = (
    "UPDATE tasks SET {assignments}" + _NOT_BEFORE_NOW + ", version=(tasks.version + 1), "
    "seq={seq} " + _ONE_TASK + " AND {changes}"
)
UPDATE = (
    _OWNER_NEXT_CHANGE.format(owner_sets="", moved="")
    + _PATCH.replace("seq={seq} ", "seq=owner.change_seq FROM owner ")
    + " AND tasks.user_id = owner.user_id"
    + _ANSWER.format(answer_moved="0 AS moved")
)
UPDATE_AGAIN = _PATCH.replace("{seq}", "%(seq)s") + f" RETURNING {COLUMNS}"
UPDATABLE = ("title", "description", "priority", "tags", "due_date")

# complete with no body: a toggle. The owner's completed count moves by what the statement
# saw of the task; the service corrects it (OWNER_COMPLETED) when the UPDATE found otherwise.
_SEEN = (
    "coalesce((SELECT CASE WHEN tasks.completed THEN -1 ELSE 1 END FROM tasks "
    + _ONE_TASK
    + "), 0)"
)
_TOGGLE = (
    "UPDATE tasks SET completed=NOT tasks.completed, " + _NOT_BEFORE_NOW + ", "
    "completed_at=CASE WHEN tasks.completed THEN NULL ELSE %(now)s END, "
    "version=(tasks.version + 1), seq={seq} " + _ONE_TASK + " AND true"
)
TOGGLE = (
    _OWNER_NEXT_CHANGE.format(
        owner_sets=f"completed_count=(task_owners.completed_count + {_SEEN}), ",
        moved=f", {_SEEN} AS moved",
    )
    + _TOGGLE.format(seq="owner.change_seq FROM owner")
    + " AND tasks.user_id = owner.user_id"
    + _ANSWER.format(answer_moved="owner.moved AS moved")
)
TOGGLE_AGAIN = _TOGGLE.format(seq="%(seq)s") + f" RETURNING {COLUMNS}"
# after a toggle whose guess was wrong: the owner's completed count follows the task.
OWNER_COMPLETED = (
    "UPDATE task_owners SET completed_count=(task_owners.completed_count + %(moved)s) "
    "WHERE task_owners.user_id = %(user_id)s RETURNING task_owners.change_seq, "
    "task_owners.tombstone_count, task_owners.key_count"
)
