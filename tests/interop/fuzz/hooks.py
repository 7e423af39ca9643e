"""Schemathesis hooks for the contract fuzzing run (loaded through SCHEMATHESIS_HOOKS)."""

from __future__ import annotations

import json
import os
from typing import Any

import schemathesis


@schemathesis.check
def no_other_users_task(_context: Any, response: Any, case: Any) -> bool | None:
    """In the BOLA run, no answer may read, write or even confirm the victim's task."""
    victim = os.environ.get("FUZZ_VICTIM")
    if not victim:
        return None
    victim_id = os.environ["FUZZ_VICTIM_TASK_ID"]
    if 200 <= response.status_code < 300:
        # Compared as text: the configured parameter reaches the case as a string.
        if str((case.path_parameters or {}).get("task_id")) == victim_id:
            raise AssertionError(f"{response.status_code} for the victim's task {victim_id}")
        conversation = os.environ.get("FUZZ_VICTIM_CONVERSATION_ID")
        if (case.path_parameters or {}).get("conversation_id") == conversation:
            raise AssertionError(f"{response.status_code} for the victim's conversation")
        if response.headers.get("content-type", [""])[0].startswith("text/event-stream"):
            tasks = [_event_task(line) for line in response.text.splitlines()]
        else:
            body = response.json() if response.content else None
            tasks = body if isinstance(body, list) else [body]
        for task in tasks:
            if isinstance(task, dict) and task.get("user_id") == victim:
                raise AssertionError(f"the answer carries a task of {victim}")
    return None


def _event_task(line: str) -> Any:
    """The task an event stream's `data:` line carries, if any."""
    if not line.startswith("data: "):
        return None
    data = json.loads(line.removeprefix("data: "))
    # A change carries the task in `task`; a reminder is the task itself.
    return data.get("task", data)
