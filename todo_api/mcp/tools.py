"""MCP tools generated from the contract, never written beside it: each operation the spec marks
`x-mcp-tool` is one tool. Pure: a spec in, tool definitions out.

- Its arguments are the operation's path and query parameters, the header parameters the
  extension's `headers` maps to argument names, and its JSON body's writable fields, each with
  the spec's own schema, `$ref`s resolved; and `user_id`, the spec's `UserId`, which every tool
  takes (an agent may name the user it acts for; it must be the token's).
- Its output is the schema of the operation's success answer; a list (a JSON array, its total
  and next page in headers) is wrapped as an object, as `listed` builds it.
- Its description is the operation's summary and description; its annotations follow from the
  HTTP method (`METHOD_HINTS`), and the extension's `annotations` may override them.
"""

from __future__ import annotations

import copy
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from todo_api.web.validators import draft4_schema

EXTENSION = "x-mcp-tool"
USER_ID = "user_id"
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
JSON = "application/json"

# A list answer as one object, the shape MCP's structured content takes:
# `{<list>: [...], "total": <X-Total-Count>, "next_cursor": <the next page's cursor, or null>}`.
TOTAL = "total"
NEXT_CURSOR = "next_cursor"
TOTAL_HEADER = "X-Total-Count"
CURSOR_PARAMETER = "cursor"

# What each method says of an operation (RFC 9110 section 9.2): a GET only reads; a DELETE
# destroys; PUT, PATCH and DELETE may be repeated to the same effect; nothing reaches beyond
# the user's own tasks.
METHOD_HINTS: dict[str, dict[str, bool]] = {
    "get": {"readOnlyHint": True},
    "post": {"readOnlyHint": False, "destructiveHint": False, "idempotentHint": False},
    "put": {"readOnlyHint": False, "idempotentHint": True},
    "patch": {"readOnlyHint": False, "idempotentHint": True},
    "delete": {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": True},
}
HINTS = frozenset({"readOnlyHint", "destructiveHint", "idempotentHint", "openWorldHint"})
# The methods whose body changes only the fields it carries (the spec's PUT and PATCH).
PARTIAL_WRITES = frozenset({"put", "patch"})


class SpecError(ValueError):
    """An `x-mcp-tool` the generator cannot make a tool of; the message says which and why."""


@dataclass(frozen=True)
class Argument:
    """A tool argument that is one of the operation's parameters."""

    name: str
    # The spec's parameter, `$ref`s resolved: what the HTTP door checks its value against.
    parameter: dict[str, Any]

    @property
    def location(self) -> str:
        location: str = self.parameter["in"]
        return location

    @property
    def parameter_name(self) -> str:
        name: str = self.parameter["name"]
        return name


@dataclass(frozen=True)
class ToolDefinition:
    name: str
    operation_id: str
    method: str
    path: str
    title: str
    description: str
    parameters: tuple[Argument, ...]
    # The request body's schema, `$ref`s resolved, and the fields a tool takes of it.
    body_schema: dict[str, Any] | None
    body_required: bool
    body_fields: tuple[str, ...]
    user_id: Argument
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    annotations: dict[str, bool]
    # For an operation that answers a list: the member of the object it is wrapped in.
    list_member: str | None


def tools(spec: Mapping[str, Any]) -> tuple[ToolDefinition, ...]:
    """A tool for each operation marked `x-mcp-tool`, in the spec's order."""
    made = tuple(
        _tool(spec, path, method, item, operation)
        for path, method, item, operation in _operations(spec)
        if EXTENSION in operation
    )
    names = [tool.name for tool in made]
    duplicated = sorted({name for name in names if names.count(name) > 1})
    if duplicated:
        raise SpecError(f"{EXTENSION} names {', '.join(duplicated)} more than once")
    return made


def listed(
    tool: ToolDefinition, items: Sequence[Any], total: int, next_cursor: str | None
) -> dict[str, Any]:
    """A list answer as the object `output_schema` declares for it."""
    if tool.list_member is None:
        raise ValueError(f"{tool.name} does not answer a list")
    return {tool.list_member: list(items), TOTAL: total, NEXT_CURSOR: next_cursor}


def resolved(node: Any, spec: Mapping[str, Any], _within: tuple[str, ...] = ()) -> Any:
    """`node` with every `$ref` into the spec's components replaced by a copy of its target."""
    if isinstance(node, list):
        return [resolved(item, spec, _within) for item in node]
    if not isinstance(node, dict):
        return node
    reference = node.get("$ref")
    if isinstance(reference, str):
        if reference in _within:
            raise SpecError(f"{reference} contains itself")
        return resolved(_target(spec, reference), spec, (*_within, reference))
    return {key: resolved(value, spec, _within) for key, value in node.items()}


def _target(spec: Mapping[str, Any], reference: str) -> Any:
    if not reference.startswith("#/"):
        raise SpecError(f"{reference} is not a reference within the spec")
    node: Any = spec
    for part in reference[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


def _operations(spec: Mapping[str, Any]) -> Iterator[tuple[str, str, Any, Any]]:
    for path, item in spec["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, item, operation


def _tool(
    spec: Mapping[str, Any],
    path: str,
    method: str,
    item: Mapping[str, Any],
    operation: Mapping[str, Any],
) -> ToolDefinition:
    marked: Mapping[str, Any] = operation[EXTENSION]
    name: str = marked["name"]
    parameters = _parameters(spec, path, item, operation, marked.get("headers", {}))
    if any(p.name == USER_ID for p in parameters):
        raise SpecError(f"{name}: {USER_ID} is every tool's own argument, not a parameter")
    body_schema, body_required = _body(spec, operation)
    fields = _writable(body_schema)
    if method in PARTIAL_WRITES:
        # A field an update is not sent keeps its value: a default would tell a client (or a
        # model) to send it, and so reset the field.
        fields = {field: _without_default(schema) for field, schema in fields.items()}
    taken = {p.name for p in parameters} | {USER_ID}
    clashing = sorted(taken & set(fields))
    if clashing:
        raise SpecError(f"{name}: {', '.join(clashing)} is both a parameter and a body field")
    user_id = Argument(USER_ID, resolved(spec["components"]["parameters"]["UserId"], spec))
    list_member = marked.get("list")
    overrides = dict(marked.get("annotations", {}))
    unknown = sorted(set(overrides) - HINTS)
    if unknown:
        raise SpecError(f"{name}: no such annotation as {', '.join(unknown)}")
    summary: str = operation.get("summary", name)
    return ToolDefinition(
        name=name,
        operation_id=operation["operationId"],
        method=method,
        path=path,
        title=summary,
        description=_description(operation),
        parameters=parameters,
        body_schema=body_schema,
        body_required=body_required,
        body_fields=tuple(fields),
        user_id=user_id,
        input_schema=_input_schema(parameters, body_schema, fields, body_required, user_id),
        output_schema=_output_schema(spec, name, operation, parameters, list_member),
        annotations={**METHOD_HINTS[method], "openWorldHint": False, **overrides},
        list_member=list_member,
    )


def _parameters(
    spec: Mapping[str, Any],
    path: str,
    item: Mapping[str, Any],
    operation: Mapping[str, Any],
    headers: Mapping[str, str],
) -> tuple[Argument, ...]:
    """The path's parameters, then the operation's (which win over the path's of one name)."""
    declared: dict[tuple[str, str], dict[str, Any]] = {}
    for parameter in (*item.get("parameters", ()), *operation.get("parameters", ())):
        found = resolved(parameter, spec)
        declared[(found["in"], found["name"])] = found
    arguments = [
        Argument(parameter["name"], parameter)
        for (location, _), parameter in declared.items()
        if location in {"path", "query"}
    ]
    for argument, header in headers.items():
        parameter = declared.get(("header", header))
        if parameter is None:
            raise SpecError(f"{path}: no header parameter {header} for {argument}")
        arguments.append(Argument(argument, parameter))
    return tuple(arguments)


def _body(
    spec: Mapping[str, Any], operation: Mapping[str, Any]
) -> tuple[dict[str, Any] | None, bool]:
    body = operation.get("requestBody")
    if body is None:
        return None, False
    body = resolved(body, spec)
    schema: dict[str, Any] = body["content"][JSON]["schema"]
    return schema, bool(body.get("required", False))


def _object(schema: Mapping[str, Any]) -> dict[str, Any]:
    """An object schema with its `allOf` members merged in: properties, required names and
    the rest. Only one member may name properties, so that merging keeps the meaning."""
    merged = {key: value for key, value in schema.items() if key != "allOf"}
    members = [_object(member) for member in schema.get("allOf", ())]
    if sum("properties" in member for member in members) + ("properties" in merged) > 1:
        raise SpecError("an allOf whose members each name properties cannot be merged")
    required = list(merged.get("required", ()))
    for member in members:
        for key, value in member.items():
            if key == "required":
                required += [name for name in value if name not in required]
            else:
                merged.setdefault(key, value)
    if required:
        merged["required"] = required
    return merged


def _writable(body_schema: Mapping[str, Any] | None) -> dict[str, Mapping[str, Any]]:
    """The body's fields a client sets: the server-set (`readOnly`) ones are not arguments."""
    if body_schema is None:
        return {}
    properties: Mapping[str, Mapping[str, Any]] = _object(body_schema).get("properties", {})
    return {name: schema for name, schema in properties.items() if not schema.get("readOnly")}


def _without_default(schema: Mapping[str, Any]) -> Mapping[str, Any]:
    return {key: value for key, value in schema.items() if key != "default"}


def _visible(schema: Mapping[str, Any], description: str | None = None) -> dict[str, Any]:
    """A schema as JSON Schema states it (`nullable` as a `null` type), described."""
    shown: dict[str, Any] = draft4_schema(copy.deepcopy(dict(schema)))
    if description and "description" not in shown:
        shown["description"] = description.strip()
    return shown


def _input_schema(
    parameters: Sequence[Argument],
    body_schema: Mapping[str, Any] | None,
    fields: Mapping[str, Mapping[str, Any]],
    body_required: bool,
    user_id: Argument,
) -> dict[str, Any]:
    properties: dict[str, Any] = {}
    required: list[str] = []
    for argument in parameters:
        parameter = argument.parameter
        properties[argument.name] = _visible(parameter["schema"], parameter.get("description"))
        if parameter.get("required"):
            required.append(argument.name)
    body_needs = set(_object(body_schema).get("required", ())) if body_schema else set()
    for name, schema in fields.items():
        properties[name] = _visible(schema)
        if body_required and name in body_needs:
            required.append(name)
    properties[USER_ID] = _visible(
        user_id.parameter["schema"], user_id.parameter.get("description")
    )
    return {
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": False,
    }


def _success(operation: Mapping[str, Any], spec: Mapping[str, Any]) -> Mapping[str, Any]:
    codes = sorted(code for code in operation["responses"] if str(code).startswith("2"))
    if not codes:
        raise SpecError(f"{operation['operationId']} has no success answer")
    answer: Mapping[str, Any] = resolved(operation["responses"][codes[0]], spec)
    return answer


def _output_schema(
    spec: Mapping[str, Any],
    name: str,
    operation: Mapping[str, Any],
    parameters: Sequence[Argument],
    list_member: str | None,
) -> dict[str, Any] | None:
    answer = _success(operation, spec)
    content = answer.get("content", {}).get(JSON)
    if content is None:
        if list_member is not None:
            raise SpecError(f"{name}: `list` names no list; the answer has no JSON body")
        return None
    schema = _visible(_object(content["schema"]))
    if schema.get("type") != "array":
        if list_member is not None:
            raise SpecError(f"{name}: `list` names no list; the answer is an object")
        return schema
    if list_member is None:
        raise SpecError(f"{name} answers a list: `list` must name its member")
    return _list_schema(answer, schema, parameters, list_member)


def _list_schema(
    answer: Mapping[str, Any],
    items: dict[str, Any],
    parameters: Sequence[Argument],
    member: str,
) -> dict[str, Any]:
    total_header = answer.get("headers", {}).get(TOTAL_HEADER)
    cursor = next((p for p in parameters if p.parameter_name == CURSOR_PARAMETER), None)
    if total_header is None or cursor is None:
        raise SpecError(f"a list wrapped as {member!r} needs {TOTAL_HEADER} and a cursor")
    next_cursor = _visible(
        {**cursor.parameter["schema"], "nullable": True},
        "Pass as `cursor` for the next page; null on the last page.",
    )
    return {
        "type": "object",
        "properties": {
            member: items,
            TOTAL: _visible(total_header["schema"], total_header.get("description")),
            NEXT_CURSOR: next_cursor,
        },
        "required": [member, TOTAL, NEXT_CURSOR],
        "additionalProperties": False,
    }


def _description(operation: Mapping[str, Any]) -> str:
    parts = [operation.get("summary", ""), operation.get("description", "")]
    text = "\n\n".join(" ".join(part.split()) for part in parts if part and part.strip())
    return text
