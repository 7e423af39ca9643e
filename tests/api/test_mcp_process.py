"""MCP over HTTP against `todo-api serve` as a process of its own, as an agent reaches it."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import httpx2
import mcp_types as types

from tests.conftest import AUDIENCE, ISSUER, SECRET, bearer, make_token
from tests.mcp_client import call, session, structured
from tests.network import serving


def environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("BETTER_AUTH", "JWKS", "REDIS", "METRICS", "MCP_", "RATE_LIMIT"))
    }
    return (
        env
        | {
            "DATABASE_URL": f"sqlite:///{tmp_path / 'todo.db'}",
            "BETTER_AUTH_SECRET": SECRET,
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "INFO",
        }
        | settings
    )


def test_an_agent_manages_its_users_tasks_over_http(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    with (
        log.open("wb") as out,
        serving(environment(tmp_path), tmp_path, stdout=out, stderr=out) as (base, _),
    ):
        url = f"{base}/mcp"

        async def agent() -> list[str]:
            async with session(url, "alice") as opened:
                names = [tool.name for tool in (await opened.list_tools()).tools]
                added = await opened.call_tool(
                    "add_task", {"title": "Call mum", "user_id": "alice"}
                )
                assert isinstance(added, types.CallToolResult)
                task = structured(added)
                done = await opened.call_tool("complete_task", {"task_id": task["id"]})
                assert isinstance(done, types.CallToolResult)
                assert structured(done)["completed"] is True
                return names

        names = asyncio.run(agent())
        assert {"add_task", "list_tasks", "complete_task", "delete_task", "update_task"} <= set(
            names
        )
        listed = structured(call(url, "alice", "list_tasks", status="completed"))
        assert [task["title"] for task in listed["tasks"]] == ["Call mum"]
        assert structured(call(url, "bob", "list_tasks"))["total"] == 0
        over_http = httpx2.get(f"{base}/tasks", headers=bearer(make_token("alice"))).json()
        assert over_http == listed["tasks"]
        assert httpx2.post(url, json={}).status_code == 401
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    calls = [line for line in lines if line["event"] == "tool_call"]
    assert [(line["tool"], line["outcome"]) for line in calls] == [
        ("add_task", "ok"),
        ("complete_task", "ok"),
        ("list_tasks", "ok"),
        ("list_tasks", "ok"),
    ]
    assert all(line["user"] in {"alice", "bob"} for line in calls)
    mcp_requests = [line for line in lines if line.get("route") == "/api/mcp"]
    assert {line["status"] for line in mcp_requests} == {200, 202, 401}
    assert not any(line["level"] == "ERROR" for line in lines)


def test_mcp_enabled_false_serves_no_mcp(tmp_path: Path) -> None:
    with serving(environment(tmp_path, MCP_ENABLED="false"), tmp_path) as (base, _):
        listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
        answer = httpx2.post(f"{base}/mcp", json=listing, headers=bearer(make_token("alice")))
        assert answer.status_code == 404
        assert answer.headers["content-type"] == "application/problem+json"
