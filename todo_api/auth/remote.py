"""Calls to Better Auth, bounded in time and size whatever the other end does."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx2

# A JWKS or a session answer is a few KiB; anything near this is not Better Auth talking.
MAX_ANSWER_BYTES = 1_000_000


class RemoteError(Exception):
    """Better Auth could not be asked, or its answer could not be read."""


async def get_json(
    client: httpx2.AsyncClient, url: str, *, timeout: float, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    """GET `url`: its status, and its JSON body when the status is 200 (else None).

    `timeout` bounds the whole exchange: a server that answers one byte at a time is cut off
    as surely as one that does not answer.
    """
    try:
        async with asyncio.timeout(timeout):
            async with client.stream("GET", url, headers=headers) as response:
                if response.status_code != 200:
                    return response.status_code, None
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > MAX_ANSWER_BYTES:
                        raise RemoteError(f"the answer from {url} is over {MAX_ANSWER_BYTES} bytes")
    except (httpx2.HTTPError, TimeoutError) as exc:
        raise RemoteError(f"{url}: {exc!r}") from exc
    try:
        return 200, json.loads(body)
    except (ValueError, RecursionError) as exc:
        raise RemoteError(f"the answer from {url} is not JSON") from exc
