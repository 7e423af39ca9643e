"""Every place this service reaches into Connexion's internals, and only here.

Connexion 3.3's public API has no way to do what each hook below does; each says why, and
tests/unit/test_connexion_hooks.py fails if a Connexion release stops offering what it leans on.
Connexion is pinned to the minor version tested (pyproject.toml: connexion>=3.3,<3.4).

What an upstream hook would replace:
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

from connexion.context import scope as _current_scope
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.operations import AbstractOperation
from connexion.resolver import Resolution, Resolver
from connexion.security import AbstractSecurityHandler
from starlette.routing import Mount, Route
from starlette.types import ASGIApp, Scope


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
