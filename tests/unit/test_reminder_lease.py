"""REMINDER_LEASE_SECONDS: how long a claimed reminder waits for a stream to write it."""

from __future__ import annotations

import pytest

from todo_api.settings import ConfigError, Settings


def test_the_lease_is_read_and_defaults_to_thirty_seconds() -> None:
    assert Settings.from_env({}).reminder_lease_seconds == 30
    assert Settings.from_env({"REMINDER_LEASE_SECONDS": "2.5"}).reminder_lease_seconds == 2.5


@pytest.mark.parametrize("value", ["1", "3601", "0", "soon"])
def test_a_lease_out_of_bounds_is_refused_with_its_name(value: str) -> None:
    with pytest.raises(ConfigError, match="REMINDER_LEASE_SECONDS"):
        Settings.from_env({"REMINDER_LEASE_SECONDS": value})
