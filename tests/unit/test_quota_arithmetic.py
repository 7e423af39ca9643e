"""The owner's counters' arithmetic, without a database: what the quota makes a write forget
or purge, and the total a list filtered by status only is answered from the counts."""

from __future__ import annotations

import pytest

from storage.quota import keys_past_quota, tombstones_past_quota, total_by_status


@pytest.mark.parametrize(
    ("key_count", "quota", "forgotten"),
    [(0, 5, 0), (4, 5, 0), (5, 5, 0), (6, 5, 1), (9, 5, 4), (3, 0, 3)],
)
def test_keys_past_the_quota_are_forgotten_oldest_first(
    key_count: int, quota: int, forgotten: int
) -> None:
    assert keys_past_quota(key_count, quota) == forgotten


@pytest.mark.parametrize(
    ("tombstones", "purged", "quota", "to_purge"),
    [
        (10, 0, 10, 0),
        (11, 0, 10, 1),
        # Those past retention went first: they count against the excess.
        (11, 1, 10, 0),
        (13, 1, 10, 2),
        (5, 3, 10, 0),
        (4, 0, 0, 4),
    ],
)
def test_deleted_tasks_past_the_quota_are_purged_after_those_past_retention(
    tombstones: int, purged: int, quota: int, to_purge: int
) -> None:
    assert tombstones_past_quota(tombstones, purged, quota) == to_purge


@pytest.mark.parametrize(("status", "total"), [("all", 10), ("completed", 3), ("pending", 7)])
def test_the_total_by_status_comes_from_the_counts(status: str, total: int) -> None:
    assert total_by_status(status, tasks=10, completed=3) == total
