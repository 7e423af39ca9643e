"""The rules of a task's writes that need no database: when its reminder is due, what its
fields imply, what a completion moves, and when a write would change nothing."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from storage import IfMatch, InvalidTask, Task
from storage.derived import derived_values
from storage.listing import like_term
from storage.reminders import remind_at
from storage.statements import Completion, version_check
from storage.updates import CompletionEffects, completion_effects, completion_of, is_unchanged

DUE = dt.datetime(2027, 1, 1, 9, tzinfo=dt.UTC)
EARLIEST = dt.datetime.min.replace(tzinfo=dt.UTC)


def test_a_reminder_is_due_before_the_due_date_by_remind_before() -> None:
    assert remind_at(DUE, dt.timedelta(minutes=10)) == DUE - dt.timedelta(minutes=10)
    assert remind_at(DUE, dt.timedelta(0)) == DUE


def test_no_reminder_without_a_due_date_or_remind_before() -> None:
    assert remind_at(None, dt.timedelta(minutes=10)) is None
    assert remind_at(DUE, None) is None
    assert remind_at(None, None) is None


def test_a_reminder_before_year_one_is_as_early_as_a_date_can_be() -> None:
    early = dt.datetime(1, 1, 1, 0, 10, tzinfo=dt.UTC)
    assert remind_at(early, dt.timedelta(minutes=5)) == early - dt.timedelta(minutes=5)
    assert remind_at(early, dt.timedelta(days=1)) == EARLIEST


def task(**fields: Any) -> Task:
    values: dict[str, Any] = {
        "id": 7,
        "user_id": "alice",
        "title": "t",
        "description": None,
        "completed": False,
        "priority": "medium",
        "tags": [],
        "due_date": DUE,
        "created_at": DUE,
        "updated_at": DUE,
        "completed_at": None,
        "version": 1,
        "recurrence": None,
        "timezone": "UTC",
        "series_id": None,
        "next_task_id": None,
        "remind_before": None,
        "remind_at": None,
    }
    return Task(**(values | fields))


def test_a_recurring_task_starts_its_own_series() -> None:
    assert derived_values(task(recurrence="FREQ=DAILY")) == (7, None)


def test_a_task_keeps_the_series_it_has() -> None:
    assert derived_values(task(recurrence="FREQ=DAILY", series_id=3)) == (3, None)
    # No longer recurring: still of the series it was made in.
    assert derived_values(task(series_id=3)) == (3, None)


def test_a_task_that_does_not_recur_has_no_series() -> None:
    assert derived_values(task()) == (None, None)


def test_a_recurring_task_needs_a_due_date() -> None:
    with pytest.raises(InvalidTask) as refused:
        derived_values(task(recurrence="FREQ=DAILY", due_date=None))
    assert refused.value.pointer == "#/due_date"


def test_remind_at_is_derived_from_the_due_date_and_remind_before() -> None:
    before = dt.timedelta(hours=1)
    assert derived_values(task(remind_before=before)) == (None, DUE - before)
    assert derived_values(task(remind_before=before, due_date=None)) == (None, None)


@pytest.mark.parametrize(
    ("completion", "was", "now", "recurring", "has_next", "effects"),
    [
        # Completing: one more completed, and a recurring task's next occurrence, once.
        ("complete", False, True, False, False, (+1, None)),
        ("complete", False, True, True, False, (+1, "make")),
        ("complete", False, True, True, True, (+1, None)),
        # Completing a completed task moves nothing.
        ("complete", True, True, True, False, (0, None)),
        # Reopening: one fewer, and the next occurrence it made is withdrawn.
        ("reopen", True, False, True, True, (-1, "withdraw")),
        ("reopen", True, False, False, False, (-1, None)),
        ("reopen", False, False, True, True, (0, None)),
        # A toggle was the opposite of what it made.
        ("toggle", None, True, True, False, (+1, "make")),
        ("toggle", None, False, True, True, (-1, "withdraw")),
        ("toggle", None, False, False, False, (-1, None)),
        # Completion not asked for: nothing moves, whatever the task's state.
        ("keep", None, True, True, False, (0, None)),
        ("keep", False, True, True, False, (0, None)),
        # Not read (no such task): nothing moves.
        ("complete", None, True, True, False, (0, None)),
    ],
)
def test_what_a_completion_moves(
    completion: Completion,
    was: bool | None,
    now: bool,
    recurring: bool,
    has_next: bool,
    effects: tuple[int, str | None],
) -> None:
    found = completion_effects(completion, was, now, recurring=recurring, has_next=has_next)
    assert found == CompletionEffects(*effects)


def test_completed_or_not_is_complete_or_reopen() -> None:
    assert completion_of(True) == "complete"
    assert completion_of(False) == "reopen"


STORED = {"title": "t", "priority": 2, "tags": ["a"], "completed": False, "due_date": None}


@pytest.mark.parametrize(
    ("values", "completion", "unchanged"),
    [
        ({}, "keep", True),
        ({"title": "t", "tags": ["a"]}, "keep", True),
        ({"title": "t", "tags": ["b"]}, "keep", False),
        ({"due_date": DUE}, "keep", False),
        ({"priority": 2}, "reopen", True),
        ({}, "complete", False),
        ({"priority": 3}, "reopen", False),
        ({}, "toggle", False),
    ],
)
def test_a_write_is_unchanged_only_if_every_value_and_the_completion_are_as_stored(
    values: dict[str, Any], completion: Completion, unchanged: bool
) -> None:
    assert is_unchanged(STORED, values, completion) is unchanged


def test_completing_a_completed_task_changes_nothing() -> None:
    stored = STORED | {"completed": True}
    assert is_unchanged(stored, {"title": "t"}, "complete") is True
    assert is_unchanged(stored, {}, "reopen") is False
    assert is_unchanged(stored, {}, "toggle") is False


def test_if_match_is_any_version_none_or_the_versions_it_names_in_order() -> None:
    assert version_check(None) == ("any", {})
    assert version_check(IfMatch(versions=None)) == ("any", {})
    assert version_check(IfMatch(versions=frozenset())) == ("none", {})
    versions = frozenset({8, 1, 3})
    assert list(versions) != sorted(versions)  # a set's own order would not do
    assert version_check(IfMatch(versions=versions)) == ("versions", {"versions": [1, 3, 8]})


def test_a_search_term_is_taken_literally() -> None:
    assert like_term("50%_a/b") == "50/%/_a//b"
    assert like_term("plain") == "plain"
