"""tests.perf.tail's arithmetic: py-spy's samples as shares, and GC pauses by generation."""

from __future__ import annotations

import json
from pathlib import Path

from tests.perf.tail import pauses, shares

RAW = "\n".join(
    [
        "thread (1): MainThread;run (uvicorn/server.py:1);data_received "
        "(uvicorn/protocols/http/httptools_impl.py:2) 6",
        "thread (1): MainThread;run (uvicorn/server.py:1);run_asgi "
        "(uvicorn/protocols/http/httptools_impl.py:3);__call__ (todo_api/web/ratelimit.py:4);"
        "emit (logging/__init__.py:5) 2",
        "thread (2): AnyIO worker thread;get_task (handlers/tasks.py:6);execute "
        "(sqlalchemy/engine/base.py:7) 1",
        "thread (2): AnyIO worker thread;somewhere (elsewhere.py:8) 1",
    ]
)


def test_each_sample_goes_to_its_innermost_known_group() -> None:
    by_group, by_thread = shares(RAW)
    assert by_group == {
        "uvicorn's HTTP": 60.0,
        "logging (the access line)": 20.0,
        "SQLAlchemy and psycopg2": 10.0,
        "other": 10.0,
    }
    assert by_thread == {"event loop": 80.0, "handler threads": 20.0}


def test_pauses_are_summed_up_by_generation(tmp_path: Path) -> None:
    (tmp_path / "gc.1").write_text(json.dumps([[0, 0.001], [2, 0.120], [0, 0.003]]))
    (tmp_path / "gc.2").write_text(json.dumps([[2, 0.004]]))
    assert pauses(sorted(tmp_path.glob("gc.*"))) == {
        0: {"count": 2, "median_ms": 2.0, "max_ms": 3.0},
        2: {"count": 2, "median_ms": 62.0, "max_ms": 120.0},
    }
