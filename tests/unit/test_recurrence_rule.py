"""The next occurrence of a recurring task, computed without a database."""

from __future__ import annotations

import datetime as dt

import pytest

from storage.recurrence import HORIZON_YEARS, next_occurrence


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=dt.UTC)


def test_a_daily_rule_steps_one_day_and_carries_the_same_rule() -> None:
    assert next_occurrence("FREQ=DAILY", utc("2027-01-01T09:00"), "UTC") == (
        utc("2027-01-02T09:00"),
        "FREQ=DAILY",
    )


def test_an_interval_is_kept_and_the_rule_comes_back_normalised() -> None:
    assert next_occurrence("COUNT=3;INTERVAL=2;FREQ=WEEKLY", utc("2027-01-04T09:00"), "UTC") == (
        utc("2027-01-18T09:00"),
        "FREQ=WEEKLY;INTERVAL=2;COUNT=2",
    )


@pytest.mark.parametrize(
    ("zone", "due", "expected"),
    [
        # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC from the last Sunday of March.
        ("Europe/Berlin", "2027-03-27T08:00", "2027-03-28T07:00"),
        # 09:00 in New York is 14:00 UTC in winter and 13:00 UTC from the second Sunday of March.
        ("America/New_York", "2027-03-13T14:00", "2027-03-14T13:00"),
        # And back in autumn.
        ("Europe/Berlin", "2027-10-30T07:00", "2027-10-31T08:00"),
    ],
)
def test_the_local_time_is_kept_across_a_daylight_saving_change(
    zone: str, due: str, expected: str
) -> None:
    assert next_occurrence("FREQ=DAILY", utc(due), zone) == (utc(expected), "FREQ=DAILY")


def test_count_counts_the_occurrences_left_and_one_ends_the_series() -> None:
    due = utc("2027-01-04T09:00")
    assert next_occurrence("FREQ=WEEKLY;COUNT=3", due, "UTC") == (
        utc("2027-01-11T09:00"),
        "FREQ=WEEKLY;COUNT=2",
    )
    assert next_occurrence("FREQ=WEEKLY;COUNT=2", due, "UTC") == (
        utc("2027-01-11T09:00"),
        "FREQ=WEEKLY;COUNT=1",
    )
    assert next_occurrence("FREQ=WEEKLY;COUNT=1", due, "UTC") is None


def test_an_until_date_includes_its_own_day_in_the_tasks_zone() -> None:
    rule = "FREQ=DAILY;UNTIL=20270103"
    # 09:00 in Tokyo on the 2nd, then the 3rd: the 3rd is UNTIL's day there (not yet in UTC).
    assert next_occurrence(rule, utc("2027-01-02T00:00"), "Asia/Tokyo") == (
        utc("2027-01-03T00:00"),
        rule,
    )
    assert next_occurrence(rule, utc("2027-01-03T00:00"), "Asia/Tokyo") is None


def test_an_until_date_is_a_day_of_the_tasks_zone_not_of_utc() -> None:
    rule = "FREQ=DAILY;UNTIL=20270102"
    # 19:00 in Los Angeles on the 1st, then on the 2nd (already the 3rd in UTC).
    assert next_occurrence(rule, utc("2027-01-02T03:00"), "America/Los_Angeles") == (
        utc("2027-01-03T03:00"),
        rule,
    )
    # 08:00 in Tokyo on the 2nd, then on the 3rd (still the 2nd in UTC).
    assert next_occurrence(rule, utc("2027-01-01T23:00"), "Asia/Tokyo") is None


def test_an_until_instant_includes_an_occurrence_at_that_instant() -> None:
    rule = "FREQ=DAILY;UNTIL=20270102T090000Z"
    assert next_occurrence(rule, utc("2027-01-01T09:00"), "UTC") == (utc("2027-01-02T09:00"), rule)
    assert next_occurrence(rule, utc("2027-01-01T09:01"), "UTC") is None


def test_a_monthly_rule_on_the_31st_skips_the_shorter_months() -> None:
    found = next_occurrence("FREQ=MONTHLY;BYMONTHDAY=31", utc("2027-01-31T12:00"), "UTC")
    assert found == (utc("2027-03-31T12:00"), "FREQ=MONTHLY;BYMONTHDAY=31")


def test_the_last_day_of_the_month_by_a_negative_monthday() -> None:
    found = next_occurrence("FREQ=MONTHLY;BYMONTHDAY=-1", utc("2027-01-31T12:00"), "UTC")
    assert found == (utc("2027-02-28T12:00"), "FREQ=MONTHLY;BYMONTHDAY=-1")


def test_a_weekly_rule_by_day_finds_the_next_named_day() -> None:
    # Monday the 4th: the next of Monday, Wednesday, Friday is Wednesday the 6th.
    found = next_occurrence("FREQ=WEEKLY;BYDAY=MO,WE,FR", utc("2027-01-04T09:00"), "UTC")
    assert found == (utc("2027-01-06T09:00"), "FREQ=WEEKLY;BYDAY=MO,WE,FR")


def test_the_horizon_is_the_last_year_a_next_occurrence_may_lie_in() -> None:
    due = utc("2027-01-04T09:00")
    within = next_occurrence(f"FREQ=YEARLY;INTERVAL={HORIZON_YEARS}", due, "UTC")
    assert within == (utc("2127-01-04T09:00"), f"FREQ=YEARLY;INTERVAL={HORIZON_YEARS}")
    assert next_occurrence(f"FREQ=YEARLY;INTERVAL={HORIZON_YEARS + 1}", due, "UTC") is None


@pytest.mark.parametrize(
    "rule",
    [
        # Every seventh day from a Monday is a Monday: never a Tuesday.
        "FREQ=DAILY;INTERVAL=7;BYDAY=TU",
        # No month has a sixth Monday.
        "FREQ=MONTHLY;BYDAY=6MO",
    ],
)
def test_a_rule_that_never_meets_again_ends_the_series(rule: str) -> None:
    assert next_occurrence(rule, utc("2027-01-04T09:00"), "UTC") is None


def test_no_next_occurrence_past_the_calendars_end() -> None:
    assert next_occurrence("FREQ=DAILY", utc("9999-12-31T05:00"), "America/Los_Angeles") is None
    assert next_occurrence("FREQ=DAILY", utc("9999-12-31T09:00"), "UTC") is None
