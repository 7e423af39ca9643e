"""Where an answer points: a path as a `Location` names it, and the next page's link
(RFC 8288, `Link: <...>; rel="next"`)."""

from __future__ import annotations

from urllib.parse import parse_qsl, quote, urlencode

from starlette.datastructures import URL


def path_of(url: URL) -> str:
    return quote(url.path.rstrip("/"))


def next_page(url: URL, cursor: str) -> str:
    """The same request's URL with `cursor` in place of the one it had, if any."""
    params = [(k, v) for k, v in parse_qsl(url.query, keep_blank_values=True) if k != "cursor"]
    return f"{path_of(url)}?{urlencode([*params, ('cursor', cursor)])}"
