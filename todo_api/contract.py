"""What code reads from the spec itself, so that no rule is written twice."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import yaml
from jsonschema import Draft4Validator, ValidationError, validators
from jsonschema.protocols import Validator
from starlette.routing import compile_path

import openapi

# Wherever the code is installed, the contract is installed beside it (package data).
SPEC_DIR = Path(openapi.__file__).resolve().parent
SPEC_FILE = "openapi.yaml"


@cache
def spec_bytes() -> bytes:
    """The spec file as written; read once, so that what is served is what was parsed."""
    return (SPEC_DIR / SPEC_FILE).read_bytes()


@cache
def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(spec_bytes())
    return loaded


def base_path() -> str:
    """The path every operation's path is below: the spec's server URL's, `/api`."""
    url: str = spec()["servers"][0]["url"]
    return urlparse(url).path.rstrip("/")


def independent_spec() -> dict[str, Any]:
    """A copy of the spec for Connexion, in which no two places share one object.

    The spec reuses lists with YAML anchors, and Connexion extends an operation's parameter
    list in place: shared, one path's parameters would leak into the other family's.
    """
    copy: dict[str, Any] = json.loads(json.dumps(spec()))
    return copy


@cache
def task_properties() -> dict[str, dict[str, Any]]:
    schemas = spec()["components"]["schemas"]
    properties: dict[str, dict[str, Any]] = schemas["TaskInput"]["properties"]
    return properties


@cache
def writable_task_fields() -> tuple[str, ...]:
    """The task fields a client may set; the read-only ones are accepted in bodies and ignored."""
    return tuple(name for name, prop in task_properties().items() if not prop.get("readOnly"))


# json.loads joins escaped surrogate pairs into one character, so any surrogate left is unpaired,
# and no UTF-8 database can store it.
UNPAIRED_SURROGATE = re.compile("[\ud800-\udfff]")


def ecma_pattern(
    validator: Draft4Validator, pattern: str, instance: Any, _schema: dict[str, Any]
) -> Iterator[ValidationError]:
    """`pattern` as JSON Schema means it (ECMA 262), where `$` is the very end of the string.

    Python's `$` also matches before a final newline, so `^[^\\n]+$` would let "x\\n" through.
    """
    if validator.is_type(instance, "string") and not python_regex(pattern).search(instance):
        yield ValidationError(f"{instance!r} does not match {pattern!r}")


@cache
def python_regex(pattern: str) -> re.Pattern[str]:
    """A spec pattern as Python reads it, `$` meaning the very end of the string."""
    if pattern.endswith("$") and not pattern.endswith("\\$"):
        pattern = pattern[:-1] + "\\Z"
    return re.compile(pattern)


# types-jsonschema leaves extend() unannotated; it returns a validator class.
SchemaValidator: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft4Validator, {"pattern": ecma_pattern}
)


@cache
def _user_id_validator() -> Validator:
    return SchemaValidator(spec()["components"]["parameters"]["UserId"]["schema"])


def is_user_id(value: object) -> bool:
    """Whether a token's subject is a user id as the spec's `UserId` parameter defines one."""
    return (
        isinstance(value, str)
        and _user_id_validator().is_valid(value)
        and not UNPAIRED_SURROGATE.search(value)
    )


def task_defaults() -> dict[str, Any]:
    """A new task's values for the fields a create leaves out: the spec's defaults, else null."""
    return {name: task_properties()[name].get("default") for name in writable_task_fields()}


@cache
def status_synonyms() -> dict[str, str]:
    """The list's `status` words that stand for another (`x-synonyms` on the parameter)."""
    return dict(spec()["components"]["parameters"]["Status"].get("x-synonyms", {}))


HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


def _resolve(node: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in node:
        *_, kind, name = node["$ref"].split("/")
        node = spec()["components"][kind][name]
    return node


def _typed_template(template: str, item: dict[str, Any]) -> str:
    """The path as Connexion routes it: integer parameters only match digits."""
    parameters = [_resolve(p) for p in item.get("parameters", [])]
    for name in (p["name"] for p in parameters if p["schema"].get("type") == "integer"):
        template = template.replace("{" + name + "}", "{" + name + ":int}")
    return template


@cache
def _routes() -> tuple[tuple[re.Pattern[str], tuple[str, ...], str], ...]:
    base = base_path()
    routes = []
    for template, item in spec()["paths"].items():
        methods = {method.upper() for method in item if method in HTTP_METHODS}
        if "GET" in methods:
            methods.add("HEAD")
        # As requests are matched: without a trailing slash, the root (`/api/`) included.
        pattern, _, _ = compile_path((base + _typed_template(template, item)).rstrip("/") or "/")
        routes.append((pattern, tuple(sorted(methods)), base + template))
    return tuple(routes)


def allowed_methods(path: str) -> tuple[str, ...]:
    """The methods the spec defines for a request path (for a 405's `Allow`)."""
    path = path.rstrip("/") or "/"
    found: set[str] = set()
    for pattern, methods, _ in _routes():
        if pattern.match(path):
            found.update(methods)
    return tuple(sorted(found))


def route_template(path: str) -> str | None:
    """The spec's path a request path is routed by (`/api/tasks/{task_id}`), or None."""
    path = path.rstrip("/") or "/"
    for pattern, _, template in _routes():
        if pattern.match(path):
            return template
    return None


def operation_path(operation_id: str) -> str:
    """The path (`/api/health`) of the spec's operation with this id."""
    paths: dict[str, dict[str, Any]] = spec()["paths"]
    for template, item in paths.items():
        for method, operation in item.items():
            if method in HTTP_METHODS and operation["operationId"] == operation_id:
                return base_path() + template
    raise KeyError(operation_id)


@cache
def _request_id_schema() -> tuple[re.Pattern[str], int, int]:
    schema = spec()["components"]["schemas"]["RequestId"]
    return python_regex(schema["pattern"]), schema["minLength"], schema["maxLength"]


def is_request_id(value: str) -> bool:
    """Whether a client's `X-Request-ID` is a `RequestId` as the spec defines one."""
    pattern, shortest, longest = _request_id_schema()
    return shortest <= len(value) <= longest and pattern.search(value) is not None


EVENT_STREAM = "text/event-stream"


@cache
def streamed_routes() -> frozenset[str]:
    """The spec's paths that may answer an event stream (a request that lasts: the event
    stream, a chat turn): those whose 200 answer offers one."""
    base = base_path()
    found = set()
    for template, item in spec()["paths"].items():
        for method, operation in item.items():
            if method not in HTTP_METHODS:
                continue
            answer = _resolve(operation.get("responses", {}).get("200", {}))
            if EVENT_STREAM in answer.get("content", {}):
                found.add(base + template)
    return frozenset(found)


PROBE_TAG = "health"


@cache
def probe_paths() -> frozenset[str]:
    """The spec's probes (its `health` operations): cheap, without a credential, and never
    rate-limited, so that a load balancer checking often never takes a replica down."""
    base = base_path()
    return frozenset(
        base + template
        for template, item in spec()["paths"].items()
        if PROBE_TAG in item.get("get", {}).get("tags", ())
    )


@cache
def _streamed_tails() -> frozenset[str]:
    return frozenset(route.rsplit("/", 1)[-1] for route in streamed_routes())


def is_streamed(path: str) -> bool:
    """Whether a request path is routed to an event stream (asked of every request)."""
    # Most paths end otherwise: the routing is only asked about the few that could be.
    tail = path.rstrip("/").rsplit("/", 1)[-1]
    return tail in _streamed_tails() and route_template(path) in streamed_routes()
