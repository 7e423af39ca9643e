"""Loaded by a server tests.perf.tail starts (this folder first on its PYTHONPATH): each
garbage collection's generation and pause, written as JSON to $TODO_GC_PROBE.<pid> after every
full collection and every 200th."""

from __future__ import annotations

import gc
import json
import os
import time
from typing import Any

_PATH = os.environ.get("TODO_GC_PROBE")
if _PATH:
    _pauses: list[tuple[int, float]] = []
    _began = [0.0]
    _out = f"{_PATH}.{os.getpid()}"

    def _timed(phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            _began[0] = time.perf_counter()
            return
        _pauses.append((info["generation"], time.perf_counter() - _began[0]))
        if info["generation"] == 2 or len(_pauses) % 200 == 0:
            with open(_out, "w") as out:
                json.dump(_pauses, out)

    gc.callbacks.append(_timed)
