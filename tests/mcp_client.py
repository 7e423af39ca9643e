"""The official MCP SDK's client against a live server, for the tests of /api/mcp: a session
per `with`, and the app served by uvicorn in a thread of this process."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx2
import mcp_types as types
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from tests.conftest import bearer, make_token
from tests.network import in_a_thread


@contextlib.asynccontextmanager
async def session(
    url: str, user: str | None = "alice", *, token: str | None = None, **claims: Any
) -> AsyncIterator[ClientSession]:
    """An initialized session at `url` (the server's `/api/mcp`) as `user`'s bearer token, or
    with `token` as it is (one another issuer made)."""
    if token is None and user is not None:
        token = make_token(user, **claims)
    headers = bearer(token) if token is not None else {}
    async with (
        httpx2.AsyncClient(headers=headers, timeout=30) as http,
        streamable_http_client(url, http_client=http) as (read, write),
        ClientSession(read, write) as opened,
    ):
        await opened.initialize()
        yield opened


def call(url: str, user: str, tool: str, **arguments: Any) -> types.CallToolResult:
    """One tool call in a session of its own."""

    async def called() -> types.CallToolResult:
        async with session(url, user) as opened:
            result = await opened.call_tool(tool, arguments)
            assert isinstance(result, types.CallToolResult)
            return result

    return asyncio.run(called())


def structured(result: types.CallToolResult) -> Any:
    """The result's structured content, which must be what its JSON text block says."""
    assert not result.is_error, result.content
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    assert len(texts) == 2, texts
    assert json.loads(texts[1]) == result.structured_content
    return result.structured_content


def summary(result: types.CallToolResult) -> str:
    first = result.content[0]
    assert isinstance(first, types.TextContent)
    assert "\n" not in first.text
    return first.text


def problem(result: types.CallToolResult) -> dict[str, Any]:
    """A tool error's problem (the HTTP door's problem+json body), as its JSON text block: a
    refusal has no structured content, which clients hold to the tool's output schema."""
    assert result.is_error, result.content
    assert result.structured_content is None
    texts = [block.text for block in result.content if isinstance(block, types.TextContent)]
    assert len(texts) == 2, texts
    found = json.loads(texts[1])
    assert isinstance(found, dict)
    return found


@contextlib.contextmanager
def in_process(app: Any, port: int | None = None) -> Iterator[str]:
    """`app` served by uvicorn in a thread on `port` (a free loopback port unless given): its
    API base URL."""
    with in_a_thread(app, port) as served:
        yield f"http://127.0.0.1:{served}/api"
