"""What the handlers read from the spec itself, so that no rule is written twice."""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from starlette.routing import compile_path

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


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


@cache
def _routes() -> tuple[tuple[re.Pattern[str], tuple[str, ...]], ...]:
    base = urlparse(spec()["servers"][0]["url"]).path.rstrip("/")
    routes = []
    for template, item in spec()["paths"].items():
        methods = {method.upper() for method in item if method in HTTP_METHODS}
        if "GET" in methods:
            methods.add("HEAD")
        pattern, _, _ = compile_path(base + template)
        routes.append((pattern, tuple(sorted(methods))))
    return tuple(routes)


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods the spec defines for a request path (for a 405's `Allow`)."""
    path = path.rstrip("/") or "/"
    found: set[str] = set()
    for pattern, methods in _routes():
        if pattern.match(path):
            found.update(methods)
    return tuple(sorted(found))
