"""What the handlers read from the spec itself, so that no rule is written twice."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import yaml

SPEC_DIR = Path(__file__).resolve().parent.parent / "openapi"
SPEC_FILE = "openapi.yaml"


@cache
def spec() -> dict[str, Any]:
    with (SPEC_DIR / SPEC_FILE).open(encoding="utf-8") as file:
        return yaml.safe_load(file)


def independent_spec() -> dict[str, Any]:
    """A copy of the spec for Connexion, in which no two places share one object.

    The spec reuses lists with YAML anchors, and Connexion extends an operation's parameter
    list in place: shared, one path's parameters would leak into the other family's.
    """
    return json.loads(json.dumps(spec()))


@cache
def task_properties() -> dict[str, dict[str, Any]]:
    return spec()["components"]["schemas"]["TaskInput"]["properties"]


@cache
def writable_task_fields() -> tuple[str, ...]:
    """The task fields a client may set; the read-only ones are accepted in bodies and ignored."""
    return tuple(name for name, prop in task_properties().items() if not prop.get("readOnly"))


def task_defaults() -> dict[str, Any]:
    """A new task's values for the fields a create leaves out: the spec's defaults, else null."""
    return {name: task_properties()[name].get("default") for name in writable_task_fields()}
