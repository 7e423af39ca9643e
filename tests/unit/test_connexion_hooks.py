"""What todo_api/web/connexion_hooks.py leans on in Connexion is still there and still used.

A Connexion release that renames, drops or stops calling any of it fails here, by name,
rather than somewhere in the middle of a request.
"""

from __future__ import annotations

import inspect
from typing import Any

import pytest
from connexion.context import _scope as _scope_var
from connexion.middleware.swagger_ui import SwaggerUIMiddleware
from connexion.security import AbstractSecurityHandler
from starlette.testclient import TestClient

from todo_api.web import connexion_hooks, validators


def _parameters(function: Any) -> list[str]:
    return list(inspect.signature(function).parameters)


def test_the_current_scope_proxy_gives_its_object() -> None:
    token = _scope_var.set({"type": "http", "marker": 1})
    try:
        assert connexion_hooks.request_scope()["marker"] == 1
    finally:
        _scope_var.reset(token)


def test_the_schemas_checked_are_compiled_once_for_the_life_of_the_app(
    client: TestClient, alice: dict[str, str]
) -> None:
    def requests() -> None:
        created = client.post("/api/tasks", json={"title": "kept"}, headers=alice)
        assert created.status_code == 201
        task = created.json()["id"]
        assert client.get(f"/api/tasks/{task}", headers=alice).status_code == 200
        assert client.get("/api/tasks?limit=5", headers=alice).status_code == 200
        patched = client.patch(f"/api/tasks/{task}", json={"title": "again"}, headers=alice)
        assert patched.status_code == 200

    requests()
    sizes = len(validators._COMPILED), len(validators._PARAMETER_CHECKERS)
    assert all(sizes)
    for _ in range(5):
        requests()
    # Connexion hands each request its operation's own schema objects: were they new ones, these
    # would grow with every request (and compile every time).
    assert (len(validators._COMPILED), len(validators._PARAMETER_CHECKERS)) == sizes


def test_only_swagger_uis_own_paths_go_through_its_router(
    client: TestClient, alice: dict[str, str]
) -> None:
    assert client.get("/api/tasks", headers=alice).status_code == 200  # the stack is built
    swagger = swagger_ui_of(client)
    beyond, paths = connexion_hooks.past_swagger_ui(swagger) or (None, ())
    assert beyond is swagger.app
    assert "/api/docs" in paths
    routed: list[str] = []
    router = swagger.router

    async def counted(scope: Any, receive: Any, send: Any) -> None:
        routed.append(scope["path"])
        await router(scope, receive, send)

    swagger.router = counted
    assert client.get("/api/tasks", headers=alice).status_code == 200
    assert client.get("/api/docs/").status_code == 200
    redirect = client.get("/api/docs", follow_redirects=False)
    assert redirect.status_code == 307
    assert redirect.headers["location"].endswith("/api/docs/")
    assert routed == ["/api/docs/", "/api/docs"]


def swagger_ui_of(client: TestClient) -> Any:
    """The app's Swagger UI middleware, found down the middleware stack."""
    app: Any = client.app
    for _ in range(50):
        if isinstance(app, SwaggerUIMiddleware):
            return app
        app = (
            getattr(app, "app", None)
            or getattr(app, "middleware_stack", None)
            or getattr(app, "middleware", None)
        )
    raise AssertionError("no Swagger UI middleware in the stack")


def test_a_security_functions_signature_is_read_once(
    client: TestClient, alice: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert inspect.isfunction(AbstractSecurityHandler._accepts_kwarg.__wrapped__)
    AbstractSecurityHandler._accepts_kwarg.cache_clear()
    read: list[Any] = []
    signature = inspect.signature

    def counted(function: Any, *args: Any, **kwargs: Any) -> inspect.Signature:
        read.append(function)
        return signature(function, *args, **kwargs)

    monkeypatch.setattr(inspect, "signature", counted)
    for _ in range(3):
        assert client.get("/api/tasks", headers=alice).status_code == 200
    # Once for each keyword asked about (required_scopes, request), not once a request.
    assert [f.__name__ for f in read] == ["bearer_info", "bearer_info"]
