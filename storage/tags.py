"""Tags: a user's tags with how many pending and completed tasks carry each, and renaming one
on every task that carries it.

A task's tags are a JSON array in its row (JSONB on PostgreSQL), read as rows of their own
where a statement counts or looks for them.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Engine,
    Integer,
    Select,
    String,
    and_,
    bindparam,
    case,
    exists,
    func,
    or_,
    select,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.sql import type_coerce

from storage.cursors import tag_cursor, tag_position
from storage.errors import TagNotFound
from storage.models import TaskRow
from storage.quota import Quota, lock_owner
from storage.records import TagCount, TagPage
from storage.statements import LIVE_TASKS, new_values, task_params, update_task
from storage.unit_of_work import Writes


def has_tag(dialect: str) -> ColumnElement[bool]:
    """The task carries the tag `tag`."""
    tag = bindparam("tag", type_=String())
    if dialect == "postgresql":
        return type_coerce(TaskRow.tags, JSONB).contains(func.jsonb_build_array(tag))
    elements = func.json_each(TaskRow.tags).table_valued("value")
    return exists().select_from(elements).where(elements.c.value == tag)


def _tag_elements(dialect: str) -> Any:
    """Each tag of a task as a row (`value`), joined to the task's row."""
    if dialect == "postgresql":
        return func.jsonb_array_elements_text(type_coerce(TaskRow.tags, JSONB)).table_valued(
            "value"
        )
    return func.json_each(TaskRow.tags).table_valued("value")


@cache
def _tag_counts(dialect: str, *, after: bool) -> Select[Any]:
    """A page of the owner's tags, most used first, `limit` rows, after `after_uses` and
    `after_tag` if `after`; with each tag's pending and completed counts."""
    elements = _tag_elements(dialect)
    tag = elements.c.value
    uses = func.count()
    completed = func.coalesce(func.sum(case((TaskRow.completed, 1), else_=0)), 0)
    page = (
        select(tag.label("tag"), uses.label("uses"), completed.label("completed"))
        .select_from(TaskRow)
        .join(elements, true())
        .where(*LIVE_TASKS)
        .group_by(tag)
    )
    if after:
        after_uses = bindparam("after_uses", type_=Integer())
        after_tag = bindparam("after_tag", type_=String())
        page = page.having(or_(uses < after_uses, and_(uses == after_uses, tag > after_tag)))
    return page.order_by(uses.desc(), tag.asc()).limit(bindparam("limit"))


@cache
def _tag_total(dialect: str) -> Select[Any]:
    elements = _tag_elements(dialect)
    tags = (
        select(elements.c.value)
        .select_from(TaskRow)
        .join(elements, true())
        .where(*LIVE_TASKS)
        .distinct()
        .subquery()
    )
    return select(func.count()).select_from(tags)


@cache
def _tag_count(dialect: str) -> Select[Any]:
    """How many of the owner's tasks carry `tag`, and how many of those are completed."""
    completed = func.coalesce(func.sum(case((TaskRow.completed, 1), else_=0)), 0)
    return select(func.count().label("uses"), completed.label("completed")).where(
        *LIVE_TASKS, has_tag(dialect)
    )


@cache
def _tasks_tagged(dialect: str) -> Select[int, list[str]]:
    return (
        select(TaskRow.id, TaskRow.tags).where(*LIVE_TASKS, has_tag(dialect)).order_by(TaskRow.id)
    )


class Tags:
    def __init__(self, engine: Engine, writes: Writes, quota: Quota) -> None:
        self._engine = engine
        self._dialect = engine.dialect.name
        self._writes = writes
        self._quota = quota

    def list_tags(self, user_id: str, limit: int, cursor: str | None = None) -> TagPage:
        after = tag_position(cursor) if cursor is not None else None
        values: dict[str, Any] = {"owner": user_id, "limit": limit + 1}
        if after is not None:
            values |= {"after_uses": after[0], "after_tag": after[1]}
        page = _tag_counts(self._dialect, after=after is not None)
        with self._engine.begin() as connection:
            rows = connection.execute(page, values).all()
            total = connection.scalar(_tag_total(self._dialect), values)
        next_cursor = None
        if len(rows) > limit:
            rows = rows[:limit]
            next_cursor = tag_cursor(rows[-1].uses, rows[-1].tag)
        return TagPage(
            tags=[TagCount(row.tag, row.uses - row.completed, row.completed) for row in rows],
            total=total or 0,
            next_cursor=next_cursor,
        )

    def rename_tag(self, user_id: str, tag: str, to: str) -> TagCount:
        """Put `to` in place of `tag` on every task of the user's that carries it, in one
        transaction, each task written (and in the feed) once; TagNotFound if none does."""
        tagged = {"owner": user_id, "tag": tag}
        with self._writes.begin() as work:
            connection = work.connection
            lock_owner(connection, user_id)
            rows = connection.execute(_tasks_tagged(self._dialect), tagged).all()
            if not rows:
                raise TagNotFound(tag)
            if to != tag:
                statement = update_task(("tags",), "keep", "any")
                for row in rows:
                    # `to` where `tag` was, once: a task that had both keeps the first place.
                    renamed = list(dict.fromkeys(to if name == tag else name for name in row.tags))
                    counted = self._quota.record_write(work, user_id, 0)
                    assert counted is not None  # the owner's row is locked by this write
                    connection.execute(
                        statement,
                        task_params(user_id, row.id)
                        | new_values({"tags": renamed})
                        | {"now": work.now, "new_seq": counted.change_seq},
                    )
            counts = connection.execute(_tag_count(self._dialect), tagged | {"tag": to}).one()
            work.commit()
        return TagCount(to, counts.uses - counts.completed, counts.completed)
