"""The rules of reading a task list that need no database."""

from __future__ import annotations

import pytest

from todo_api.contract import spec, status_synonyms
from todo_api.usecases.tasks import task_status

STATUS = spec()["components"]["parameters"]["Status"]


def test_the_contract_declares_active_a_synonym_of_pending() -> None:
    assert status_synonyms() == {"active": "pending"}
    assert task_status("active") == "pending"


@pytest.mark.parametrize("status", ["all", "pending", "completed"])
def test_every_other_status_is_read_as_it_is(status: str) -> None:
    assert task_status(status) == status


def test_a_synonym_is_read_as_the_status_it_stands_for() -> None:
    assert task_status("done", {"done": "completed"}) == "completed"
    assert task_status("active", {}) == "active"


def test_every_status_the_spec_allows_is_read_as_one_storage_filters_by() -> None:
    allowed = STATUS["schema"]["enum"]
    assert set(status_synonyms()) <= set(allowed)
    assert {task_status(status) for status in allowed} == {"all", "pending", "completed"}
