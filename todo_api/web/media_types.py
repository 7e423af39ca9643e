"""What a request body is, read from its headers as HTTP defines them, before Connexion routes
the request: Connexion compares media types case-sensitively (an upper-case `APPLICATION/JSON`
skipped validation, then reached the handler as bytes) and knows no content codings."""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Receive, Scope, Send

from todo_api.web.problems import UnsupportedContentCoding

# Methods whose requests this API never reads a body of.
_BODILESS = frozenset({"GET", "HEAD", "OPTIONS"})


def media_type(content_type: str) -> str:
    """A Content-Type's media type, in lower case, without parameters.

    Type and subtype are case-insensitive (RFC 9110 section 8.3.1). The parameters are
    dropped: the only media type this API reads, application/json, defines none, and its body
    is UTF-8 whatever a `charset` says (RFC 8259 sections 8.1 and 11), so no part of the server
    may read it in another charset.
    """
    return content_type.partition(";")[0].strip().lower()


def content_codings(values: list[str]) -> list[str]:
    """The content codings that Content-Encoding fields name, `identity` (none) aside."""
    codings = (coding.strip().lower() for value in values for coding in value.split(","))
    return [coding for coding in codings if coding and coding != "identity"]


class RequestContent:
    """Refuse a body with a content coding (415 with `Accept-Encoding: identity`): it would
    be read as it came, undecoded, and the body limit counts it before decoding. Hand every
    other request on with its Content-Type reduced to its media type in lower case, which is
    how Connexion, its validators and the handlers all then read it."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in _BODILESS:
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        codings = content_codings(headers.getlist("content-encoding"))
        if codings:
            raise UnsupportedContentCoding(", ".join(codings))
        content_type = headers.get("content-type")
        if content_type is not None and media_type(content_type) != content_type:
            scope = {**scope, "headers": list(scope["headers"])}
            MutableHeaders(scope=scope)["content-type"] = media_type(content_type)
        await self.app(scope, receive, send)
