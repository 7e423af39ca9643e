"""What a valid request is, beyond the spec's schemas, and how its errors are answered: 422 with
one `errors` entry per offending field (Connexion's own validators raise 400 with the first
error only, as text). todo_api/web/connexion_hooks.py plugs these into Connexion."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, TypeVar, cast
from urllib.parse import unquote_plus

import jsonschema_rs
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.json_schema import Draft4RequestValidator
from jsonschema import Draft4Validator, ValidationError, validators
from jsonschema.protocols import Validator
from starlette.datastructures import Headers

from todo_api.contract import UNPAIRED_SURROGATE, SchemaValidator, ecma_pattern
from todo_api.web.json_members import (
    DETAIL,
    DuplicateMember,
    duplicated_paths,
    marking_members,
    unique_members,
)
from todo_api.web.problems import ValidationProblem

# jsonschema quotes the offending value; a client's 64 KiB string need not come back in full.
MAX_DETAIL = 200
UNKNOWN_FIELD = "unknown field"
TOO_MANY = {
    "maxLength": "is longer than {} characters",
    "maxItems": "has more than {} items",
    "maxProperties": "has more than {} members",
}
UNPAIRED_SURROGATE_DETAIL = "contains an unpaired surrogate escape"


def _detail(error: ValidationError) -> str:
    if error.validator == "pattern":
        # The spec says what a pattern means beside the pattern; a regex is no answer for users.
        detail: str = _error_schema(error).get(
            "x-pattern-detail", "is blank or has characters not allowed here"
        )
        return detail
    if error.validator in TOO_MANY:
        # jsonschema's words quote the whole value first: cut short, they lose what is wrong.
        return TOO_MANY[str(error.validator)].format(error.validator_value)
    message = error.message
    return message if len(message) <= MAX_DETAIL else message[: MAX_DETAIL - 3] + "..."


def _error_schema(error: ValidationError) -> Mapping[str, Any]:
    """The schema holding the keyword that failed: a mapping in every error that iter_errors
    yields (the stubs also allow `True`/`False` schemas and an error built without one)."""
    return cast("Mapping[str, Any]", error.schema)


def pointer(path: Iterable[Any]) -> str:
    return "#" + "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in path)


def body_errors(errors: Iterable[ValidationError]) -> list[dict[str, str]]:
    found: list[dict[str, str]] = []
    for error in sorted(errors, key=lambda e: [str(p) for p in e.absolute_path]):
        path = list(error.absolute_path)
        if error.validator == "additionalProperties" and isinstance(error.instance, dict):
            known = _error_schema(error).get("properties", {})
            for name in sorted(set(error.instance) - set(known)):
                found.append({"pointer": pointer([*path, name]), "detail": UNKNOWN_FIELD})
        elif error.validator == "required" and isinstance(error.instance, dict):
            # The keyword's value, set on every error that iter_errors yields: the names.
            for name in cast("Iterable[str]", error.validator_value):
                if name not in error.instance:
                    found.append({"pointer": pointer([*path, name]), "detail": "is required"})
        else:
            found.append({"pointer": pointer(path), "detail": _detail(error)})
    return found


def unpaired_surrogates(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Where JSON escapes such as "\\ud800" left a string that no UTF-8 database can store."""
    if isinstance(value, str):
        if UNPAIRED_SURROGATE.search(value):
            yield path
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from unpaired_surrogates(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from unpaired_surrogates(item, (*path, index))


# What parse_body answers for an empty body, as opposed to the JSON literal null.
NO_BODY = object()


# Connexion's request validator (which lets `nullable` values be null), with ECMA patterns.
# types-jsonschema leaves extend() unannotated; it returns a validator class.
BodySchemaValidator: type[Validator] = validators.extend(  # type: ignore[no-untyped-call]
    Draft4RequestValidator, {"pattern": ecma_pattern}
)


def body_validator(schema: dict[str, Any]) -> Validator:
    return BodySchemaValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


def draft4_schema(schema: Any, _within: frozenset[int] = frozenset()) -> Any:
    """An OpenAPI 3.0 schema as plain JSON Schema Draft 4: `nullable` (and Swagger's
    `x-nullable`) becomes `null` among the types and the enum, as Connexion's request validator
    reads it (it lets null through the `type` and `enum` keywords of a nullable schema).
    Raises RecursionError for a schema that contains itself (a resolved recursive $ref)."""
    if isinstance(schema, list | dict):
        if id(schema) in _within:
            raise RecursionError("the schema contains itself")
        _within = _within | {id(schema)}
    if isinstance(schema, list):
        return [draft4_schema(item, _within) for item in schema]
    if not isinstance(schema, dict):
        return schema
    converted = {key: draft4_schema(value, _within) for key, value in schema.items()}
    if converted.get("nullable") is True or converted.get("x-nullable") is True:
        kind = converted.get("type")
        if isinstance(kind, str):
            converted["type"] = [kind, "null"]
        elif isinstance(kind, list) and "null" not in kind:
            converted["type"] = [*kind, "null"]
        if isinstance(converted.get("enum"), list) and None not in converted["enum"]:
            converted["enum"] = [*converted["enum"], None]
    return converted


def _format_check(name: str) -> Callable[[str], bool]:
    def conforms(value: str) -> bool:
        return bool(Draft4Validator.FORMAT_CHECKER.conforms(value, name))

    return conforms


# The full check's own format checks (jsonschema-rs's date-time, say, takes a leap second and
# year 0, which rfc3339-validator refuses): a format means the same on both paths.
FORMATS = {name: _format_check(name) for name in Draft4Validator.FORMAT_CHECKER.checkers}


_Built = TypeVar("_Built")


def _kept(
    cache: dict[int, tuple[dict[str, Any], _Built]],
    schema: dict[str, Any],
    build: Callable[[dict[str, Any]], _Built],
) -> _Built:
    """What `build` makes of `schema`, made once: Connexion hands each request the same schema
    objects, its operations' own, for the life of the app. Each is kept beside what it made,
    so that its id stays its own."""
    kept = cache.get(id(schema))
    if kept is None or kept[0] is not schema:
        kept = cache[id(schema)] = (schema, build(schema))
    return kept[1]


def _compile(schema: dict[str, Any]) -> jsonschema_rs.Draft4Validator | None:
    # Connexion attaches the spec's components for $refs left unresolved; its loader has
    # resolved them all, so they are dropped (some of them contain themselves).
    body = {key: value for key, value in schema.items() if key != "components"}
    try:
        return jsonschema_rs.Draft4Validator(
            draft4_schema(body), validate_formats=True, formats=FORMATS
        )
    except RecursionError:
        return None


_COMPILED: dict[int, tuple[dict[str, Any], jsonschema_rs.Draft4Validator | None]] = {}


def compiled(schema: dict[str, Any]) -> jsonschema_rs.Draft4Validator | None:
    """`schema` compiled by jsonschema-rs; None for one that contains itself."""
    return _kept(_COMPILED, schema, _compile)


def quickly_valid(body: Any, schema: dict[str, Any]) -> bool:
    """True when the compiled schema accepts `body`: then it is valid. False says only that the
    full check (body_validator, which names every error) must decide: jsonschema-rs also says
    no to what it cannot take in (an integer past 64 bits, a float that overflowed)."""
    validator = compiled(schema)
    return validator is not None and bool(validator.is_valid(body))


def parse_body(raw: bytes, headers: Headers, encoding: str) -> Any:
    """A request body as JSON, strictly: no NaN or Infinity, no depth that recurses away, no
    member name twice in an object (422 naming each); NO_BODY when there is none."""
    if raw and "content-type" not in headers:
        # Connexion would validate it as JSON, then hand the handler raw bytes.
        raise UnsupportedMediaTypeProblem(detail="A body needs Content-Type: application/json.")
    try:
        text = raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        raise BadRequestProblem(detail=f"The body is not valid {encoding}.") from None
    if not text:
        return NO_BODY
    try:
        return _strict_json(text, unique_members)
    except DuplicateMember:
        pass
    # Read again, only now, to say where: the one read of a good body stays as cheap as it was.
    marked = _strict_json(text, marking_members)
    try:
        paths = list(duplicated_paths(marked))
    except RecursionError:
        raise BadRequestProblem(detail="The body is nested too deeply.") from None
    raise ValidationProblem([{"pointer": pointer(path), "detail": DETAIL} for path in paths])


def _strict_json(text: str, object_pairs_hook: Callable[[list[tuple[str, Any]]], Any]) -> Any:
    try:
        return json.loads(
            text, parse_constant=_reject_constant, object_pairs_hook=object_pairs_hook
        )
    except ValueError as exc:
        raise BadRequestProblem(detail=f"The body is not valid JSON: {exc}") from None
    except RecursionError:
        raise BadRequestProblem(detail="The body is nested too deeply.") from None


def check_body(body: Any, schema: dict[str, Any], *, required: bool) -> None:
    """Raise a 422 naming every offending field of `body`, or 400 for a missing one."""
    if body is NO_BODY:
        if required:  # as Connexion answers a request without Content-Length
            raise BadRequestProblem(detail="RequestBody is required")
        return
    surrogates = [
        {"pointer": pointer(path), "detail": UNPAIRED_SURROGATE_DETAIL}
        for path in unpaired_surrogates(body)
    ]
    # jsonschema-rs takes a lone surrogate in as U+FFFD: such a body goes to the full check.
    if not surrogates and quickly_valid(body, schema):
        return
    errors = body_errors(body_validator(schema).iter_errors(body)) + surrogates
    if errors:
        raise ValidationProblem(errors)


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not JSON")


def _parameter_checker(schema: dict[str, Any]) -> Validator:
    return SchemaValidator(schema, format_checker=Draft4Validator.FORMAT_CHECKER)


_PARAMETER_CHECKERS: dict[int, tuple[dict[str, Any], Validator]] = {}


def parameter_detail(value: Any, param: dict[str, Any], parameter_type: str) -> str | None:
    """What is wrong with one parameter's value, or None."""
    if value is None:
        return f"the {parameter_type} parameter is required" if param.get("required") else None
    schema = param.get("schema", param)
    # As for bodies: the compiled schema's yes is final, its no goes to the full check. A lone
    # surrogate (the MCP door's arguments may hold one) is no text jsonschema-rs takes in.
    surrogate = isinstance(value, str) and UNPAIRED_SURROGATE.search(value)
    if not surrogate and quickly_valid(value, schema):
        return None
    checker = _kept(_PARAMETER_CHECKERS, schema, _parameter_checker)
    error = next(iter(checker.iter_errors(value)), None)
    return None if error is None else _detail(error)


def unique_parameters(parameters: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each parameter once: Connexion builds an operation per middleware from one spec, each
    appending the path's parameters to the operation's own list in place, so that `task_id`
    ends up listed six times, and would be checked six times a request. The copies are one
    object."""
    return list({id(param): param for param in parameters}.values())


def declared_names(parameters: Iterable[dict[str, Any]]) -> frozenset[str]:
    return frozenset(param["name"] for param in parameters)


def declared_query(query: bytes, declared: frozenset[str]) -> bytes:
    """The query string without the parameters an operation does not declare, each kept
    byte for byte.

    Frontends send cache-busters (`_=1712345678`) and parameters of other backends
    (`sort_by=created`): they are ignored, not refused. Dropped here, before validation, so
    that neither the handler, nor the next page's `Link`, nor a log of Connexion's (which
    reports an undeclared name that matches a handler argument) sees them.
    """
    if not query:
        return query
    kept = [
        pair
        for pair in query.split(b"&")
        if unquote_plus(pair.split(b"=", 1)[0].decode("latin-1"), encoding="utf-8") in declared
    ]
    return b"&".join(kept)
