"""Connexion's async operations, with each handler wrapped once rather than on every request.

Connexion 3.3's AsyncOperation builds its decorator stack anew for every request: the thread
pool hop, the parameter decorator (which reads the handler's signature with `inspect`) and the
response decorator. None of them keeps anything of a request (the request is their argument),
so one stack per operation serves them all; building it cost about a tenth of a request's CPU.
tests/test_operations.py fails if Connexion stops taking these classes or the stack is rebuilt.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from connexion import AsyncApp
from connexion.apps.asynchronous import AsyncApi, AsyncOperation
from connexion.decorators import StarletteDecorator
from connexion.operations import AbstractOperation


class _DecorateOnce(StarletteDecorator):  # type: ignore[misc]  # Connexion is untyped
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
    app._middleware_app.api_cls = _Api
