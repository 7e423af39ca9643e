"""The contract as written, served as `/api/openapi.json` and `/api/openapi.yaml`, and the
API's index that points at it.

Web plumbing, not an operation of the spec: ASGI middleware in front of Connexion's Swagger UI.
Connexion would serve its own copy, in which every `$ref` is inlined (ten times the size, and
no schema keeps its name for a code generator); this serves the file's components and `$ref`s
as they are. Both documents are made once, at start, with their ETags.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache
from typing import Any

from starlette.datastructures import Headers
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from todo_api import about
from todo_api.contract import base_path, operation_path, spec, spec_bytes
from todo_api.web.connexion_hooks import past_swagger_ui
from todo_api.web.preconditions import none_match
from todo_api.web.problems import asgi_response

JSON_PATH = "/openapi.json"
# Swagger UI, which Connexion serves at this path with a slash (and redirects to it without).
DOCS_PATH = "/docs"
YAML_PATH = "/openapi.yaml"
# RFC 9512 registered application/yaml; JSON and YAML take no charset parameter (UTF-8 is theirs).
YAML_MEDIA_TYPE = "application/yaml"
# Stored, but asked again each time (a 304 while the ETag holds): a deploy may change the contract.
CACHE_CONTROL = "no-cache"
ALLOW = "GET, HEAD"


@dataclass(frozen=True)
class Document:
    body: bytes
    media_type: str
    etag: str


def _document(body: bytes, media_type: str) -> Document:
    return Document(body, media_type, f'"{hashlib.sha256(body).hexdigest()[:32]}"')


def contract_documents() -> dict[str, Document]:
    """The documents by request path: the YAML file's own bytes, and the same document as
    compact JSON (YAML aliases come out expanded, `$ref`s stay)."""
    as_json = json.dumps(spec(), separators=(",", ":")).encode()
    return {
        base_path() + JSON_PATH: _document(as_json, "application/json"),
        base_path() + YAML_PATH: _document(spec_bytes(), YAML_MEDIA_TYPE),
    }


@cache
def api_index() -> dict[str, Any]:
    """What the server is (its installed distribution's name and version), and where it
    serves Swagger UI, the contract as JSON, and the liveness check: the spec's `ApiIndex`."""
    return {
        "name": about.DISTRIBUTION,
        "version": about.version() or "unknown",
        "links": {
            "docs": f"{base_path()}{DOCS_PATH}/",
            "openapi": base_path() + JSON_PATH,
            "health": operation_path("handlers.health.get_health"),
        },
    }


class ServedContract:
    """Answers GET and HEAD of the contract's documents, to anyone: no token is needed to read
    what the API is."""

    def __init__(self, app: ASGIApp, documents: Mapping[str, Document]) -> None:
        self.app = app
        self.documents = documents
        # Swagger UI's middleware comes next: known once Connexion has added the APIs to it.
        self._past_docs: tuple[ASGIApp, tuple[str, ...]] | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # The trailing slash as TrailingSlash forgives it, which runs only after this.
        path = scope["path"].rstrip("/") if scope["type"] == "http" else None
        document = self.documents.get(path) if path else None
        if document is None:
            await self._next(scope)(scope, receive, send)
            return
        if scope["method"] not in {"GET", "HEAD"}:
            response = asgi_response(405, "The contract is read only.", {"Allow": ALLOW})
        else:
            headers = {"ETag": document.etag, "Cache-Control": CACHE_CONTROL}
            if none_match(document.etag, Headers(scope=scope)):
                response = Response(status_code=304, headers=headers)
            else:
                response = Response(document.body, headers=headers, media_type=document.media_type)
        await response(scope, receive, send)

    def _next(self, scope: Scope) -> ASGIApp:
        """Swagger UI for its own paths; for any other request, what Swagger UI would hand it
        to."""
        if scope["type"] != "http":
            return self.app
        if self._past_docs is None:
            self._past_docs = past_swagger_ui(self.app) or (self.app, ())
        beyond, docs = self._past_docs
        return self.app if not docs or scope["path"].startswith(docs) else beyond
