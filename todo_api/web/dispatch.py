"""Each operation's handler called with the checked request, in place of the app Connexion
wraps its handlers in: the last middleware of the stack answers the spec's operations itself.

For every request, Connexion's app routes the path a second time, builds a Connexion request
around a Starlette one, parses a form even where no body came, looks up its context and the
operation through a dozen context proxies, and coerces every parameter again. The checks
(request_checks.py) have already read each value as the handler takes it; what is left is to
pick the handler's arguments, call it (a sync handler in the thread pool) and turn what it
returns into a response as Connexion does (the spec's media type, JSON by the app's
jsonifier, 204 for no body). Anything not routed to an operation goes on to Connexion's app.
"""

from __future__ import annotations

import asyncio
import collections.abc
import inspect
import types
from collections.abc import Callable
from enum import Enum
from typing import Any

from connexion.datastructures import NoContent
from connexion.exceptions import NonConformingResponseHeaders
from connexion.frameworks.starlette import Starlette as StarletteFramework
from connexion.jsonifier import Jsonifier
from connexion.lifecycle import ConnexionResponse
from connexion.middleware.abstract import RoutedAPI, RoutedMiddleware
from connexion.operations import AbstractOperation
from connexion.utils import extract_content_type, is_json_mimetype, split_content_type
from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from todo_api.web import validators
from todo_api.web.request_checks import CHECKED, Checked

# Where the security middleware leaves `user` and `token_info`.
_CONTEXT = "connexion_context"
# The argument a handler may take to receive that context whole.
_CONTEXT_ARGUMENT = "context_"


def _unwrapped(function: Callable[..., Any]) -> Callable[..., Any]:
    while hasattr(function, "__wrapped__"):
        function = function.__wrapped__
    return function


class OperationCall:
    """One operation's handler, with what it takes read from its signature once."""

    def __init__(self, operation: AbstractOperation, jsonifier: Jsonifier) -> None:
        function: Callable[..., Any] = operation.function
        self._function = function
        unwrapped = _unwrapped(function)
        self._is_async = asyncio.iscoroutinefunction(unwrapped)
        self._takes_any, self._takes = _signature_names(unwrapped)
        self._path = frozenset(p["name"] for p in operation.parameters if p["in"] == "path")
        body_name = operation.request_body.get("x-body-name", "body")
        takes_body = body_name in self._takes or self._takes_any
        self._body = body_name if operation.is_request_body_defined and takes_body else None
        self._produces: list[str] = list(set(operation.produces))
        self._jsonifier = jsonifier

    def _arguments(self, scope: Scope) -> dict[str, Any]:
        checked: Checked = scope[CHECKED]
        arguments = {
            name: value
            for name, value in checked.values.items()
            if name in self._path or self._takes_any or name in self._takes
        }
        if self._body is not None:
            body = checked.body
            if body is validators.NO_BODY:
                # A body with a default, or a nullable one, is refused at start
                # (request_checks.py): none is {}.
                body = {}
            arguments[self._body] = body
        context: dict[str, Any] = scope.get("extensions", {}).get(_CONTEXT, {})
        for name, value in context.items():
            if self._takes_any or name in self._takes:
                arguments[name] = value
        if _CONTEXT_ARGUMENT in self._takes:
            arguments[_CONTEXT_ARGUMENT] = context
        return arguments

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        arguments = self._arguments(scope)
        if self._is_async:
            result = await self._function(**arguments)
        else:
            result = await run_in_threadpool(self._function, **arguments)
        await self.response(result)(scope, receive, send)

    def response(self, result: Any) -> Response:
        """What the handler returned as a response, as Connexion's response decorator makes
        it (connexion/decorators/response.py)."""
        if isinstance(result, Response):
            return result
        if isinstance(result, ConnexionResponse):
            converted: Response = StarletteFramework.connexion_to_framework_response(result)
            return converted
        data, status, headers = _unpacked(result)
        content_type = self._content_type(data, headers)
        if data is None or data is NoContent:
            data = None
        elif content_type and is_json_mimetype(split_content_type(content_type)[0]):
            data = self._jsonifier.dumps(data)
        status = status or (204 if data is None else 200)
        if content_type and not any(key.lower() == "content-type" for key in headers):
            headers["Content-Type"] = content_type
        built: Response = StarletteFramework.build_response(
            data, content_type=content_type, status_code=status, headers=headers
        )
        return built

    def _content_type(self, data: Any, headers: dict[str, str]) -> str | None:
        content_type: str | None = extract_content_type(headers)
        produces: list[str] = self._produces
        if data is not None and not produces:
            produces = ["application/json"]
        if content_type:
            if content_type not in produces:
                raise NonConformingResponseHeaders(
                    f"Returned content type ({content_type}) is not defined in operation spec "
                    f"({self._produces})."
                )
            return content_type
        if len(produces) <= 1:
            return produces[0] if produces else None
        wanted = None
        if isinstance(data, str):
            wanted = "text/plain"
        elif isinstance(data, bytes | types.GeneratorType | collections.abc.Iterator):
            wanted = "application/octet-stream"
        chosen = [media for media in produces if wanted and wanted in media]
        if not chosen:
            raise NonConformingResponseHeaders(
                "Multiple response content types are defined in the operation spec, but "
                "the handler response did not specify which one to return."
            )
        return chosen[-1]


def _signature_names(function: Callable[..., Any]) -> tuple[bool, frozenset[str]]:
    parameters = inspect.signature(function).parameters.values()
    names = frozenset(p.name for p in parameters if p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD))
    return any(p.kind == p.VAR_KEYWORD for p in parameters), names


def _unpacked(result: Any) -> tuple[Any, int | None, dict[str, str]]:
    """A handler's (body), (body, status), (body, headers) or (body, status, headers)."""
    if not isinstance(result, tuple):
        return result, None, {}
    if len(result) == 1:
        return result[0], None, {}
    if len(result) == 2:
        data, second = result
        if isinstance(second, int):
            return data, int(second), {}
        if isinstance(second, Enum) and isinstance(second.value, int):
            return data, second.value, {}
        return data, None, second
    if len(result) == 3:
        return result
    raise TypeError(
        "The view function did not return a valid response tuple."
        " The tuple must have the form (body), (body, status, headers),"
        " (body, status), or (body, headers)."
    )


class _CallsAPI(RoutedAPI[OperationCall]):  # type: ignore[misc]  # Connexion is untyped
    def __init__(self, *args: Any, jsonifier: Jsonifier | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.jsonifier = jsonifier or Jsonifier()
        self.add_paths()

    def make_operation(self, operation: AbstractOperation) -> OperationCall:
        return OperationCall(operation, self.jsonifier)


class Dispatch(RoutedMiddleware[_CallsAPI]):  # type: ignore[misc]  # Connexion is untyped
    """The innermost middleware: each operation's handler, called; the app behind it serves
    only what the spec does not route (the MCP door, say)."""

    api_cls = _CallsAPI
