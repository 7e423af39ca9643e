"""The rules of reading a task list that need no database."""

from __future__ import annotations

import pytest

from todo_api.contract import spec
from todo_api.usecases.tasks import task_status

STATUSES = spec()["components"]["parameters"]["Status"]["schema"]["enum"]


def test_active_is_read_as_pending() -> None:
    assert task_status("active") == "pending"


@pytest.mark.parametrize("status", ["all", "pending", "completed"])
def test_every_other_status_is_read_as_it_is(status: str) -> None:
    assert task_status(status) == status


def test_every_status_the_spec_allows_is_read_as_one_storage_filters_by() -> None:
    assert "active" in STATUSES
    assert {task_status(status) for status in STATUSES} == {"all", "pending", "completed"}
