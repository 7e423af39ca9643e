"""Request-body validation, measured in process: `python -m tests.perf.validation`.

For issue 20's first lever: before plugging a compiled validator into Connexion's
`validator_map`, what does validating a create's body cost now, and what would a compiled one
cost? Times, per call, over the spec's create schema (its $refs resolved, as Connexion hands it
to the body validator):

- ours: todo_api.web.validators (jsonschema's Draft 4, the ECMA `pattern`, formats checked,
  every error collected), as each request runs it;
- jsonschema-rs: the same schema compiled by jsonschema_rs (formats checked), `is_valid` (the
  valid path) and `iter_errors` (the errors a 422 names), where it is installed (schemathesis
  brings it to the test extra).

Compare with the server CPU per create request that `python -m tests.perf.run` reports.
"""

from __future__ import annotations

import statistics
import sys
import timeit
from collections.abc import Callable
from typing import Any

from connexion.json_schema import resolve_refs

from todo_api.contract import independent_spec
from todo_api.web import validators

BODIES: dict[str, dict[str, Any]] = {
    "title only": {"title": "Buy milk"},
    "a typical create": {
        "title": "Buy milk",
        "description": "Two litres, semi-skimmed",
        "priority": "high",
        "tags": ["home", "errands"],
        "due_date": "2026-12-01T18:00:00+01:00",
    },
    "every field": {
        "title": "Stand-up",
        "description": "Daily",
        "completed": False,
        "priority": "medium",
        "tags": ["work", "team", "daily"],
        "due_date": "2027-01-04T08:00:00Z",
        "recurrence": "FREQ=WEEKLY;BYDAY=MO,WE,FR",
        "timezone": "Europe/Berlin",
        "remind_before": "PT15M",
    },
    "invalid (3 errors)": {"title": "", "priority": "urgent", "tags": ["a", "a"]},
}


def create_schema() -> dict[str, Any]:
    resolved: dict[str, Any] = resolve_refs(independent_spec())
    body = resolved["paths"]["/tasks"]["post"]["requestBody"]
    schema: dict[str, Any] = body["content"]["application/json"]["schema"]
    return schema


def per_call_us(call: Callable[[], Any], repeat: int = 5, number: int = 2000) -> float:
    """The median of `repeat` runs, in microseconds per call."""
    runs = timeit.repeat(call, repeat=repeat, number=number)
    return statistics.median(runs) / number * 1e6


def main() -> int:
    schema = create_schema()
    ours = validators.body_validator(schema)
    try:
        import jsonschema_rs
    except ImportError:
        compiled = None
    else:
        compiled = jsonschema_rs.Draft4Validator(schema, validate_formats=True)
    print("µs per call (median of 5 runs of 2000)\n")
    print("| body | ours | jsonschema-rs is_valid | jsonschema-rs iter_errors | ratio |")
    print("|---|---|---|---|---|")
    for name, body in BODIES.items():
        mine = per_call_us(lambda body=body: list(ours.iter_errors(body)))
        if compiled is None:
            print(f"| {name} | {mine:.1f} | - | - | - |")
            continue
        # The two must agree on what is wrong, or the comparison means nothing.
        found = sorted(list(e.instance_path) for e in compiled.iter_errors(body))
        expected = sorted(list(e.absolute_path) for e in ours.iter_errors(body))
        if found != expected:
            raise SystemExit(f"{name}: jsonschema-rs finds {found}, ours {expected}")
        quick = per_call_us(lambda body=body: compiled.is_valid(body))
        listed = per_call_us(lambda body=body: list(compiled.iter_errors(body)))
        print(f"| {name} | {mine:.1f} | {quick:.1f} | {listed:.1f} | {mine / listed:.0f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
