"""Each operation's request checks, compiled once from the spec, in place of Connexion's
RequestValidationMiddleware.

Connexion's middleware builds a URI parser, a parameter validator and a body validator for
every request, deep-copies each parameter's definition and builds a jsonschema validator for
each value (Connexion issues #2045 and #2077). Here all of that is built once per operation at
start-up; a request costs a lookup by operation and the checks themselves. What a check
answers is unchanged: the same coercion of a parameter's text, the same problems, the same
order of errors (validators.py says what they are).

The checked request goes on in the scope (CHECKED): each parameter's value as the handler
takes it and the parsed body, so that nothing downstream parses the request again
(todo_api/web/dispatch.py).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qsl

from connexion.datastructures import MediaTypeDict
from connexion.exceptions import BadRequestProblem, UnsupportedMediaTypeProblem
from connexion.middleware.abstract import RoutedAPI, RoutedMiddleware
from connexion.operations import AbstractOperation
from connexion.utils import boolean, extract_content_type, is_nullable, split_content_type
from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from todo_api.web import validators
from todo_api.web.problems import ValidationProblem

# Where the checked request waits for the handler's call: a Checked.
CHECKED = "todo_api.checked"
# A value read from the text of a query, path or header parameter, as Connexion reads it.
_TYPES: dict[str, Callable[[str], Any]] = {"integer": int, "number": float, "boolean": boolean}
# The bodies checked: Connexion's validator map holds a JSON body validator only.
_JSON = MediaTypeDict({"*/*json": None})


class Checked(NamedTuple):
    # Each path and query parameter's value (a query parameter's default when it is absent).
    values: dict[str, Any]
    # The parsed body: validators.NO_BODY when there is none.
    body: Any


@dataclass(frozen=True)
class Parameter:
    name: str
    location: str
    definition: dict[str, Any]
    # The definition's `default` (query parameters only), or `_NO_DEFAULT`.
    default: Any

    def value(self, text: str) -> Any:
        """The text's value: of the parameter's type if it reads as one, else the text (whose
        check then says what is wrong with it). A header's is its text."""
        if self.location == "header":
            return text
        schema = self.definition.get("schema", self.definition)
        read = _TYPES.get(schema.get("type", ""))
        if read is None:
            return text
        try:
            return read(text)
        except (ValueError, TypeError):
            return text

    def detail(self, value: Any) -> str | None:
        return validators.parameter_detail(value, self.definition, self.location)


_NO_DEFAULT = object()


def _default(definition: Mapping[str, Any]) -> Any:
    if "default" in definition:
        return definition["default"]
    return definition.get("schema", {}).get("default", _NO_DEFAULT)


def _parameters(definitions: Iterable[dict[str, Any]]) -> tuple[Parameter, ...]:
    """Query, then path, then header parameters, each in the spec's order: the order their
    errors are reported in."""
    unique = validators.unique_parameters(definitions)
    return tuple(
        Parameter(p["name"], location, p, _default(p) if location == "query" else _NO_DEFAULT)
        for location in ("query", "path", "header")
        for p in unique
        if p["in"] == location
    )


# What Connexion would do that these checks and dispatch.py do not: a spec that starts using
# one of these is refused at start-up rather than answered differently.
_UNCOMPILED_PARAMETER = ("style", "explode", "allowReserved", "content")


def refuse_what_is_not_compiled(operation: AbstractOperation) -> None:
    """Raise ValueError for a parameter or body this module and dispatch.py do not read as
    Connexion would: array, object or nullable parameters, serialisation styles, a path or
    query parameter whose name is no Python argument name (Connexion would rename it), a
    nullable body or one with a default, a body of another media type than JSON."""
    where = operation.operation_id
    for parameter in operation.parameters:
        schema = parameter.get("schema", {})
        argument = parameter["in"] in {"path", "query"}
        if (
            schema.get("type") in {"array", "object"}
            or is_nullable(schema)
            or any(key in parameter for key in _UNCOMPILED_PARAMETER)
            or (argument and not parameter["name"].isidentifier())
        ):
            raise ValueError(f"{where}: parameter {parameter['name']!r} is not read here")
    for media_type in operation.consumes:
        if media_type not in _JSON:
            raise ValueError(f"{where}: a {media_type} body is not read here")
        schema = operation.body_schema(media_type)
        if "default" in schema or is_nullable(operation.body_definition(media_type)):
            raise ValueError(f"{where}: a nullable body, or one with a default, is not read here")


@dataclass(frozen=True)
class Body:
    schema: dict[str, Any]
    required: bool


class OperationChecks:
    """One operation's checks, compiled from its definition."""

    def __init__(self, next_app: ASGIApp, operation: AbstractOperation) -> None:
        refuse_what_is_not_compiled(operation)
        self.next_app = next_app
        self._parameters = _parameters(operation.parameters)
        self._declared = validators.declared_names(
            p.definition for p in self._parameters if p.location == "query"
        )
        self._reads_headers = any(p.location == "header" for p in self._parameters)
        self._consumes = tuple(operation.consumes)
        self._accepted = MediaTypeDict([(c.lower(), None) for c in self._consumes])
        self._operation = operation
        # Without a request body, no media type or body is looked at, as in Connexion.
        self._has_body = bool(operation.is_request_body_defined)
        # Bodies by media type: the spec's own, built (and their schemas compiled) here; any
        # other a client sends that the spec's ranges accept is looked up when it comes.
        self._bodies: dict[str, Body | None] = {}
        for media_type in self._consumes:
            self._body(media_type)

    def _body(self, mime_type: str) -> Body | None:
        known = self._bodies.get(mime_type)
        if known is not None or mime_type in self._bodies:
            return known
        body = None
        schema = self._operation.body_schema(mime_type)
        if schema and mime_type in _JSON:
            body = Body(schema, bool(self._operation.request_body.get("required", False)))
            validators.compiled(schema)
        if mime_type in self._consumes:
            self._bodies[mime_type] = body
        return body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        values = self._check_parameters(scope)
        parsed: Any = validators.NO_BODY
        if self._has_body:
            mime_type, encoding = self._content_type(scope)
            body = self._body(mime_type)
            if body is not None:
                parsed, receive = await self._check_body(body, scope, receive, encoding)
        scope[CHECKED] = Checked(values, parsed)
        await self.next_app(scope, receive, send)

    def _check_parameters(self, scope: Scope) -> dict[str, Any]:
        # Undeclared query parameters are dropped before anything reads the query.
        query = scope["query_string"] = validators.declared_query(
            scope["query_string"], self._declared
        )
        sent: dict[str, str] = {}
        if query:
            # The last of repeated names, as Connexion takes it.
            sent = dict(parse_qsl(query.decode("latin-1"), keep_blank_values=True))
        path: dict[str, Any] = scope.get("path_params", {})
        headers = Headers(scope=scope) if self._reads_headers else None
        values: dict[str, Any] = {}
        errors: list[dict[str, str]] = []
        for parameter in self._parameters:
            text: str | None
            if parameter.location == "query":
                text = sent.get(parameter.name)
            elif parameter.location == "path":
                text = path.get(parameter.name.replace("-", "_"))
            else:
                text = headers.get(parameter.name) if headers is not None else None
            value = None if text is None else parameter.value(text)
            detail = parameter.detail(value)
            if detail:
                errors.append({"parameter": parameter.name, "detail": detail})
            elif parameter.location == "header":
                continue
            elif value is not None:
                values[parameter.name] = value
            elif parameter.default is not _NO_DEFAULT:
                values[parameter.name] = parameter.default
        if errors:
            raise ValidationProblem(errors)
        return values

    def _content_type(self, scope: Scope) -> tuple[str, str]:
        mime_type, encoding = split_content_type(extract_content_type(scope["headers"]))
        if mime_type is None:
            # Content-Type is not required: the operation's first media type is assumed.
            mime_type = self._consumes[0] if self._consumes else "application/octet-stream"
        if self._consumes and mime_type.lower() not in self._accepted:
            raise UnsupportedMediaTypeProblem(
                detail=f"Invalid Content-type ({mime_type}), expected {list(self._consumes)}"
            )
        return mime_type, encoding or "utf-8"

    @staticmethod
    async def _check_body(
        body: Body, scope: Scope, receive: Receive, encoding: str
    ) -> tuple[Any, Receive]:
        headers = Headers(scope=scope)
        if body.required and not int(headers.get("content-length", 0)):
            raise BadRequestProblem("RequestBody is required")
        messages: list[Message] = []
        more = True
        while more:
            message = await receive()
            messages.append(message)
            more = message.get("more_body", False)
        raw = b"".join(message.get("body", b"") for message in messages)
        parsed = validators.parse_body(raw, headers, encoding)
        validators.check_body(parsed, body.schema, required=body.required)
        # The handler reads the parsed body; anything else that reads the stream gets it too.
        return parsed, _replay(messages, receive)


def _replay(messages: list[Message], receive: Receive) -> Receive:
    pending = iter(messages)

    async def replayed() -> Message:
        message = next(pending, None)
        return message if message is not None else await receive()

    return replayed


class _ChecksAPI(RoutedAPI[OperationChecks]):  # type: ignore[misc]  # Connexion is untyped
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.add_paths()

    def make_operation(self, operation: AbstractOperation) -> OperationChecks:
        return OperationChecks(self.next_app, operation)


class RequestChecks(RoutedMiddleware[_ChecksAPI]):  # type: ignore[misc]  # Connexion is untyped
    """Connexion's middleware-per-operation model (RoutedMiddleware): the routing middleware
    names the operation, and its checks are looked up by that name."""

    api_cls = _ChecksAPI
