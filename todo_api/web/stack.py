"""The middleware stack AsyncApp is given (its `middlewares` argument): Connexion's own, but
for its request validation and its app's handler calls, which run compiled per operation
(request_checks.py, dispatch.py)."""

from __future__ import annotations

from collections.abc import Callable

from connexion.middleware.context import ContextMiddleware
from connexion.middleware.exceptions import ExceptionMiddleware
from connexion.middleware.lifespan import LifespanMiddleware
from connexion.middleware.response_validation import ResponseValidationMiddleware
from connexion.middleware.routing import RoutingMiddleware
from connexion.middleware.security import SecurityMiddleware
from connexion.middleware.server_error import ServerErrorMiddleware
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from starlette.types import ASGIApp

from todo_api.web.dispatch import Dispatch
from todo_api.web.request_checks import RequestChecks


def middlewares(after_security: Callable[[ASGIApp], ASGIApp]) -> list[Callable[..., ASGIApp]]:
    """Outermost first. `after_security` runs once the credential is checked and before the
    request is: its position has no MiddlewarePosition, as the validation it precedes is not
    Connexion's."""
    return [
        ServerErrorMiddleware,
        ExceptionMiddleware,
        SwaggerUIMiddleware,
        RoutingMiddleware,
        SecurityMiddleware,
        after_security,
        RequestChecks,
        ResponseValidationMiddleware,
        LifespanMiddleware,
        ContextMiddleware,
        Dispatch,
    ]
