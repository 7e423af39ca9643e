"""ASGI middleware that runs before Connexion routes a request."""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from handlers.problems import asgi_response


class TrailingSlash:
    """Serve `/api/tasks/` as `/api/tasks`, in place: a redirect would make a browser drop
    `Authorization` on a cross-origin request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            # Only below the API root: `/api/` itself must stay, or the mount's own redirect
            # from `/api` to `/api/` would be undone into a loop.
            if path.endswith("/") and path.strip("/").count("/") >= 1:
                scope = dict(scope)
                scope["path"] = path.rstrip("/") or "/"
                raw_path: bytes | None = scope.get("raw_path")
                if raw_path:
                    scope["raw_path"] = raw_path.rstrip(b"/") or b"/"
        await self.app(scope, receive, send)


class CORS(CORSMiddleware):
    """Starlette's CORS, refusing a preflight with problem+json rather than plain text."""

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        headers = {
            k: v for k, v in response.headers.items() if k not in {"content-type", "content-length"}
        }
        return asgi_response(response.status_code, response.body.decode(), headers)
