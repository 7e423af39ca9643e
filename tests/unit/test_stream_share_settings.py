"""Event streams get a share of a process's connections, never all of them."""

from __future__ import annotations

import pytest

from todo_api.settings import ConfigError, Settings


def test_streams_get_half_the_connections_unless_told_otherwise() -> None:
    default = Settings.from_env({})
    assert (default.max_connections, default.streams_per_process) == (1000, 500)
    assert Settings.from_env({"MAX_CONNECTIONS": "40"}).streams_per_process == 20
    told = Settings.from_env({"MAX_CONNECTIONS": "40", "STREAMS_PER_PROCESS": "30"})
    assert told.streams_per_process == 30
    assert Settings().streams_per_process < Settings().max_connections


@pytest.mark.parametrize(
    "environ",
    [
        {"MAX_CONNECTIONS": "40", "STREAMS_PER_PROCESS": "40"},
        {"MAX_CONNECTIONS": "40", "STREAMS_PER_PROCESS": "1000"},
        {"STREAMS_PER_PROCESS": "1000"},
        # No room for one stream and one ordinary request.
        {"MAX_CONNECTIONS": "1"},
    ],
)
def test_streams_that_could_hold_every_connection_stop_the_start(
    environ: dict[str, str],
) -> None:
    with pytest.raises(ConfigError, match=r"STREAMS_PER_PROCESS \(\d+\).*MAX_CONNECTIONS \(\d+\)"):
        Settings.from_env(environ)
