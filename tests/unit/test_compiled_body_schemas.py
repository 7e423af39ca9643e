"""The compiled body schemas (jsonschema-rs) against the full check (jsonschema, as Connexion
reads OpenAPI 3.0): whatever the compiled one accepts, the full one must accept too, since a
body the compiled schema accepts is never checked again. Every request body of the spec, each
field given values chosen to sit on the edges of its rules."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from connexion.json_schema import resolve_refs

from todo_api.contract import independent_spec
from todo_api.web import validators

EDGE_STRINGS = [
    "",
    " ",
    "x",
    "Buy milk",
    "x\n",
    "\nx",
    "a\tb",
    "\u00a0",
    "x\u00a0",
    "\ufeff",
    "\u202ex",
    "x\u200b",
    "\u0085",
    "x\x7f",
    "x" * 100,
    "x" * 101,
    "x" * 200,
    "x" * 201,
    "x" * 2000,
    "x" * 2001,
    "\uff12\uff10\uff12\uff16",  # fullwidth digits
    "é",
    "work",
    "a/b",
    "low",
    "LOW",
    "high",
    "urgent",
    "2026-12-01T18:00:00Z",
    "2026-12-01T18:00:00+01:00",
    "2026-12-01t18:00:00z",
    "2026-12-01 18:00:00Z",
    "2026-12-01T18:00:00",
    "2026-02-30T00:00:00Z",
    "2026-12-01T23:59:60Z",
    "2026-12-01T18:00:00+24:00",
    "2026-12-01T18:00:00.Z",
    "2026-12-01T18:00Z",
    "2026-12-01T18:00:00.123456789+01:00",
    "2026-12-01T18:00:00Z\n",
    "0000-01-01T00:00:00Z",
    "PT15M",
    "P1W",
    "P",
    "PT",
    "P1DT",
    "P9999D",
    "P10000D",
    "pt15m",
    "PT15M\n",
    "FREQ=DAILY",
    "FREQ=WEEKLY;BYDAY=MO,WE",
    "FREQ=SECONDLY",
    "UTC",
    "Europe/Berlin",
    '"abc"',
    'W/"abc"',
    "*",
    "abc_-123",
    "abc def",
]
EDGE_VALUES: list[Any] = [
    *EDGE_STRINGS,
    None,
    True,
    False,
    0,
    1,
    -1,
    1.0,
    1.5,
    2**31,
    2**53 + 1,
    2**63,
    10**30,
    [],
    ["work"],
    ["work", "work"],
    [""],
    ["x" * 50],
    ["x" * 51],
    ["a\n"],
    [1],
    [None],
    ["t"] * 20,
    [f"t{n}" for n in range(21)],
    {},
    {"title": "x"},
]


def body_schemas() -> Iterator[tuple[str, dict[str, Any]]]:
    """Every JSON request body's schema, its $refs resolved as Connexion's loader resolves them."""
    spec = resolve_refs(independent_spec())
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if not isinstance(operation, dict) or "requestBody" not in operation:
                continue
            content = operation["requestBody"]["content"]
            for media_type, body in content.items():
                if "json" in media_type:
                    yield f"{method.upper()} {path}", body["schema"]


SCHEMAS = dict(body_schemas())


def fully_valid(body: Any, schema: dict[str, Any]) -> bool:
    return not any(True for _ in validators.body_validator(schema).iter_errors(body))


def odd(body: Any) -> bool:
    """A body valid only by the full check's quirks, which the compiled schema may refuse (and
    leave to the full check): a trailing newline after a date-time, which rfc3339-validator's
    `$` lets through."""
    values = body.values() if isinstance(body, dict) else [body]
    return any(isinstance(value, str) and value.endswith("Z\n") for value in values)


def bodies(schema: dict[str, Any]) -> Iterator[Any]:
    """Each edge value alone, then for each field, each edge value in that field, beside
    a title (which the task bodies need)."""
    yield from EDGE_VALUES
    for name in schema.get("properties", {}):
        for value in EDGE_VALUES:
            yield {name: value}
            yield {"title": "Buy milk", name: value}


def test_the_spec_has_json_request_bodies() -> None:
    assert len(SCHEMAS) >= 5


@pytest.mark.parametrize("operation", sorted(SCHEMAS))
def test_what_the_compiled_schema_accepts_the_full_check_accepts(operation: str) -> None:
    schema = SCHEMAS[operation]
    assert validators.compiled(schema) is not None, "the body schema did not compile"
    let_through = [
        body
        for body in bodies(schema)
        if validators.quickly_valid(body, schema) and not fully_valid(body, schema)
    ]
    assert let_through == []


@pytest.mark.parametrize("operation", sorted(SCHEMAS))
def test_the_compiled_schema_accepts_valid_bodies_by_itself(operation: str) -> None:
    # Otherwise every body would take the slow path, and the compiled schema would be dead.
    schema = SCHEMAS[operation]
    valid = [body for body in bodies(schema) if fully_valid(body, schema) and not odd(body)]
    assert valid, "no edge value makes a valid body"
    refused = [body for body in valid if not validators.quickly_valid(body, schema)]
    assert refused == []


def test_nullable_reads_as_connexion_reads_it() -> None:
    schema = {
        "type": "object",
        "properties": {
            "due": {"type": "string", "nullable": True},
            "level": {"type": "string", "enum": ["a", "b"], "nullable": True},
            "plain": {"type": "string"},
        },
    }
    for body in ({"due": None}, {"level": None}, {"due": "x", "level": "a"}):
        assert validators.quickly_valid(body, schema)
        assert fully_valid(body, schema)
    for body in ({"plain": None}, {"level": "c"}):
        assert not validators.quickly_valid(body, schema)
        assert not fully_valid(body, schema)


def test_a_schema_that_contains_itself_is_left_to_the_full_check() -> None:
    node: dict[str, Any] = {"type": "object", "properties": {}}
    node["properties"]["child"] = node
    assert validators.compiled(node) is None
    assert not validators.quickly_valid({"child": {}}, node)
