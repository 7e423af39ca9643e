"""Every place this service reaches into Connexion's internals, and only here.

Connexion 3.3's public API has no way to do what each hook below does; each says why, and
tests/unit/test_connexion_hooks.py fails if a Connexion release stops offering what it leans on.
Connexion is pinned to the minor version tested (pyproject.toml: connexion>=3.3,<3.4).

What an upstream hook would replace:
- `decorate_once`: an operation that builds its decorator stack once (or an `operation_cls`
  argument to AsyncApp), instead of setting `api_cls` on the private `_middleware_app` and
  overriding `AsyncOperation.fn` to read `_fn`.
- `BodyValidator`: a body validator with a public parse and validate step (today `_parse` and
  `_validate`, reading `_schema`, `_encoding` and `_required`), whose parse the handler is
  given (today a framework class on the decorator whose `get_request` makes a request whose
  `json()` returns it).
- `ParametersValidator`: a public way to check each parameter and to report every error
  (today `validate_parameter`, `validate` and `validate_request`, reading `parameters`).
- `request_scope`: the current ASGI scope as a public function rather than a proxy's object.
- `SharedHandlers`: an operation that names its handler apart from its `operationId` (ids are
  unique in a spec, and two path families share each handler), instead of reading the
  operation's own dict (`_operation`) for the spec's `x-handler`.
- `read_security_signatures_once`: a security handler that reads each security function's
  signature once (today `AbstractSecurityHandler._accepts_kwarg`, a static method).
- `past_swagger_ui`: Swagger UI's middleware serving its own paths only, instead of routing
  every request through a Starlette router whose default hands it on (reading its `app` and
  `router`).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import AsyncGenerator, Callable, Iterable
from typing import Any

from connexion import AsyncApp
from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.context import scope as _current_scope
from connexion.datastructures import MediaTypeDict
from connexion.decorators import StarletteDecorator
from connexion.frameworks.starlette import Starlette as StarletteFramework
from connexion.lifecycle import ConnexionRequest
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.operations import AbstractOperation
from connexion.resolver import Resolution, Resolver
from connexion.security import AbstractSecurityHandler
from connexion.uri_parsing import AbstractURIParser
from connexion.validators import JSONRequestBodyValidator, ParameterValidator
from starlette.datastructures import Headers
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Receive, Scope

from todo_api.web import validators
from todo_api.web.problems import ValidationProblem

# Where BodyValidator leaves the body it parsed, for the handler.
_PARSED_BODY = "todo_api.parsed_body"


class _Request(ConnexionRequest):  # type: ignore[misc]  # Connexion is untyped
    async def json(self) -> Any:
        if _PARSED_BODY in self.scope:
            body = self.scope[_PARSED_BODY]
        else:
            body = validators.parse_body(await self.body(), self.headers, "utf-8")
        return None if body is validators.NO_BODY else body


# Connexion hands a handler the body its request parses anew, with `json.loads`: which keeps
# the last of two members of one name and takes NaN, where the validator refused them. The
# handler gets the validator's own parse instead: one reading of a body, and one parse.
class _Framework(StarletteFramework):  # type: ignore[misc]  # Connexion is untyped
    @staticmethod
    def get_request(
        *, scope: Scope, receive: Receive, uri_parser: AbstractURIParser, **_kwargs: Any
    ) -> ConnexionRequest:
        return _Request(scope, receive, uri_parser=uri_parser)


# Connexion 3.3's AsyncOperation builds its decorator stack anew for every request: the thread
# pool hop, the parameter decorator (which reads the handler's signature with `inspect`) and the
# response decorator. None of them keeps anything of a request (the request is their argument),
# so one stack per operation serves them all; building it cost about a tenth of a request's CPU.
# AsyncApp takes no operation class, so the API class that makes operations is swapped in.
class _DecorateOnce(StarletteDecorator):  # type: ignore[misc]  # Connexion is untyped
    framework = _Framework

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._decorated: dict[Callable[..., Any], Callable[..., Any]] = {}

    def decorate(self, function: Callable[..., Any]) -> Callable[..., Any]:
        decorated = self._decorated.get(function)
        if decorated is None:
            decorated = self._decorated[function] = super().decorate(function)
        return decorated


class _Operation(AsyncOperation):  # type: ignore[misc]  # Connexion is untyped
    @functools.cached_property
    def fn(self) -> Callable[..., Any]:
        decorator = _DecorateOnce(pythonic_params=self.pythonic_params, jsonifier=self.jsonifier)
        fn: Callable[..., Any] = decorator(self._fn)
        return fn


class _Api(AsyncApi):  # type: ignore[misc]  # Connexion is untyped
    def make_operation(self, operation: AbstractOperation) -> AsyncOperation:
        return _Operation.from_operation(
            operation, pythonic_params=self.pythonic_params, jsonifier=self.jsonifier
        )


def decorate_once(app: AsyncApp) -> None:
    """Make the APIs added to `app` from now on wrap each handler once."""
    # The API class is an attribute of the private middleware app that AsyncApp builds.
    app._middleware_app.api_cls = _Api


class BodyValidator(JSONRequestBodyValidator):  # type: ignore[misc]  # Connexion is untyped
    """JSON bodies parsed strictly and checked by the compiled schema, with every error reported
    (validators.py). Connexion's body validators expose no public parse or validate step: these
    override `_parse` and `_validate`, and read `_schema`, `_encoding` and `_required`."""

    async def _parse(self, stream: AsyncGenerator[bytes, None], scope: Scope) -> Any:
        raw = b"".join([message async for message in stream])
        body = scope[_PARSED_BODY] = validators.parse_body(
            raw, Headers(scope=scope), self._encoding
        )
        return body

    def _validate(self, body: Any) -> None:
        validators.check_body(body, self._schema, required=self._required)


class ParametersValidator(ParameterValidator):  # type: ignore[misc]  # Connexion is untyped
    """Parameters checked once each, undeclared query parameters dropped, and every error
    reported (validators.py). ParameterValidator's checks are not a public extension point:
    these override `validate_parameter`, `validate` and `validate_request`."""

    def __init__(self, parameters: Iterable[dict[str, Any]], *args: Any, **kwargs: Any) -> None:
        super().__init__(validators.unique_parameters(parameters), *args, **kwargs)

    @staticmethod
    def validate_parameter(
        parameter_type: str, value: Any, param: dict[str, Any], param_name: Any = None
    ) -> str | None:
        return validators.parameter_detail(value, param, parameter_type)

    def validate(self, scope: Scope) -> None:
        declared = validators.declared_names(self.parameters.get("query", []))
        scope["query_string"] = validators.declared_query(scope["query_string"], declared)
        super().validate(scope)

    def validate_request(self, request: ConnexionRequest) -> None:
        errors: list[dict[str, str]] = []
        checks = {
            "query": self.validate_query_parameter,
            "path": self.validate_path_parameter,
            "header": self.validate_header_parameter,
        }
        for location, check in checks.items():
            for param in self.parameters.get(location, []):
                detail = check(param, request)
                if detail:
                    errors.append({"parameter": param["name"], "detail": detail})
        if errors:
            raise ValidationProblem(errors)


# AsyncApp's `validator_map`: the public way in, for the classes above.
VALIDATORS: dict[str, Any] = {
    "parameter": ParametersValidator,
    "body": MediaTypeDict({"*/*json": BodyValidator}),
}


def request_scope() -> Scope:
    """The ASGI scope of the request being handled.

    `connexion.request` builds a new Connexion request, and a Starlette one inside it, at every
    attribute access; handlers read what those would read straight from the scope. Connexion
    keeps the scope behind a proxy whose object only its private accessor returns.
    """
    scope: Scope = _current_scope._get_current_object()
    return scope


def past_swagger_ui(app: ASGIApp) -> tuple[ASGIApp, tuple[str, ...]] | None:
    """For Connexion's Swagger UI middleware: the app it hands every other request to, and the
    paths it serves itself (once its APIs are added); None for any other app.

    It routes every request through a Starlette router, mounts and all, only to hand all but
    its own on: a twentieth of a get's CPU. Knowing its paths, a request for anything else can
    skip it."""
    if not isinstance(app, SwaggerUIMiddleware):
        return None
    paths = tuple(
        (mount.path + route.path).rstrip("/")
        for mount in app.router.routes
        if isinstance(mount, Mount)
        for route in mount.routes
        if isinstance(route, Route | Mount)
    )
    return app.app, paths


class SharedHandlers(Resolver):  # type: ignore[misc]  # Connexion is untyped
    """The handler of an operation with `x-handler` is the function that names, and its id
    stays the spec's `operationId`: each operation of the `/{user_id}/tasks` family is served
    by the handler of its `/tasks` twin (handlers/tasks.py)."""

    def resolve(self, operation: AbstractOperation) -> Resolution:
        handler = operation._operation.get("x-handler")
        if handler is None:
            return super().resolve(operation)
        return Resolution(self.resolve_function_from_operation_id(handler), operation.operation_id)


def read_security_signatures_once() -> None:
    """Connexion's security handlers ask `inspect` for the security function's signature twice
    a request (whether it takes `required_scopes`, whether it takes `request`): the answer
    never changes for a function, so it is kept."""
    accepts = inspect.getattr_static(AbstractSecurityHandler, "_accepts_kwarg").__func__
    if not hasattr(accepts, "cache_info"):
        AbstractSecurityHandler._accepts_kwarg = staticmethod(functools.cache(accepts))
