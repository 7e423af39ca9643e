"""The OpenAI Agents SDK's MCP client (`agents.mcp.MCPServerStreamableHttp`) against /api/mcp,
served in this process: what a Phase III chat agent connects with, a user's bearer token in its
headers. No model and no network: nothing here asks OpenAI for anything, and tracing is off so
that no trace is sent either (docs/mcp.md)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import agents
import mcp_types as types
import pytest
from agents import Agent, FunctionTool, RunContextWrapper
from agents.mcp import MCPServerStreamableHttp
from agents.tool_context import ToolContext

from tests.conftest import AUDIENCE, ISSUER, SECRET, make_token
from tests.mcp_client import in_process, problem
from todo_api.app import create_app
from todo_api.contract import spec
from todo_api.mcp.tools import tools
from todo_api.settings import Settings

LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@pytest.fixture(autouse=True)
def loopback_only(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """No connection and no name lookup leaves the machine (OpenAI's API and its trace
    ingestion are not loopback); an attempt is refused and fails the test."""
    agents.set_tracing_disabled(True)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    attempts: list[str] = []
    connect = socket.socket.connect
    connect_ex = socket.socket.connect_ex
    getaddrinfo = socket.getaddrinfo

    def host_of(address: Any) -> str:
        host = address[0] if isinstance(address, tuple) else address
        return host.decode() if isinstance(host, bytes) else str(host)

    def refused(host: str) -> OSError:
        attempts.append(host)
        return ConnectionRefusedError(f"{host} is not loopback: this test reaches nothing else")

    def guarded_connect(self: socket.socket, address: Any) -> None:
        if self.family != socket.AF_UNIX and host_of(address) not in LOOPBACK:
            raise refused(host_of(address))
        connect(self, address)

    def guarded_connect_ex(self: socket.socket, address: Any) -> int:
        if self.family != socket.AF_UNIX and host_of(address) not in LOOPBACK:
            raise refused(host_of(address))
        return connect_ex(self, address)

    def guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host is not None and host_of(host) not in LOOPBACK:
            raise refused(host_of(host))
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", guarded_connect)
    monkeypatch.setattr(socket.socket, "connect_ex", guarded_connect_ex)
    monkeypatch.setattr(socket, "getaddrinfo", guarded_getaddrinfo)
    yield attempts
    assert attempts == [], f"tried to reach {attempts}"


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database: Path = tmp_path_factory.mktemp("mcp-agents") / "todo.db"
    settings = Settings(
        database_url=f"sqlite:///{database}",
        auth_secret=SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        validate_responses=True,
        rate_limit_per_user=1_000_000,
        rate_limit_per_address=1_000_000,
    )
    with in_process(create_app(settings)) as base:
        yield f"{base}/mcp"


@pytest.fixture
def user() -> str:
    """A user of the test's own, so that no test sees another's tasks."""
    return f"user-{uuid.uuid4().hex[:12]}"


@contextlib.asynccontextmanager
async def connected(url: str, user: str) -> AsyncIterator[MCPServerStreamableHttp]:
    """The Agents SDK's server object for `url`, connected as `user`'s bearer token: what a chat
    endpoint builds from the signed-in user's token."""
    server = MCPServerStreamableHttp(
        params={
            "url": url,
            "headers": {"Authorization": f"Bearer {make_token(user)}"},
            "timeout": 30,
        },
        client_session_timeout_seconds=30,
        use_structured_content=True,
    )
    await server.connect()
    try:
        yield server
    finally:
        await server.cleanup()


def run(url: str, user: str, steps: Callable[[MCPServerStreamableHttp], Awaitable[Any]]) -> Any:
    async def within() -> Any:
        async with connected(url, user) as server:
            return await steps(server)

    return asyncio.run(within())


def own_of(user: str) -> Callable[[MCPServerStreamableHttp], Awaitable[Any]]:
    """The tasks `user` lists, naming themselves as an agent may."""

    async def listed(server: MCPServerStreamableHttp) -> Any:
        return content(await server.call_tool("list_tasks", {"user_id": user}))

    return listed


def content(result: types.CallToolResult) -> Any:
    assert not result.is_error, result.content
    return result.structured_content


def test_the_tools_listed_are_the_generated_ones(url: str, user: str) -> None:
    async def listed(server: MCPServerStreamableHttp) -> list[types.Tool]:
        return await server.list_tools()

    generated = tools(spec())
    served = run(url, user, listed)
    assert [tool.name for tool in served] == [tool.name for tool in generated]
    for tool, made in zip(served, generated, strict=True):
        assert tool.input_schema == made.input_schema
        assert tool.description == made.description


def test_a_task_is_added_listed_completed_and_deleted(url: str, user: str) -> None:
    async def steps(server: MCPServerStreamableHttp) -> None:
        added = content(await server.call_tool("add_task", {"title": "Buy milk"}))
        assert (added["title"], added["user_id"], added["completed"]) == ("Buy milk", user, False)
        pending = content(await server.call_tool("list_tasks", {"status": "pending"}))
        assert [task["id"] for task in pending["tasks"]] == [added["id"]]
        assert pending["total"] == 1

        done = await server.call_tool("complete_task", {"task_id": added["id"], "completed": True})
        assert content(done)["completed"] is True
        completed = content(await server.call_tool("list_tasks", {"status": "completed"}))
        assert [task["id"] for task in completed["tasks"]] == [added["id"]]

        deleted = await server.call_tool("delete_task", {"task_id": added["id"]})
        assert not deleted.is_error
        left = content(await server.call_tool("list_tasks", {}))
        assert (left["tasks"], left["total"]) == ([], 0)

    run(url, user, steps)


def test_another_users_id_is_a_tool_error(url: str, user: str) -> None:
    other = f"{user}-bob"

    async def bobs(server: MCPServerStreamableHttp) -> dict[str, Any]:
        task: dict[str, Any] = content(await server.call_tool("add_task", {"title": "Bob's"}))
        return task

    async def as_other(server: MCPServerStreamableHttp) -> list[types.CallToolResult]:
        return [
            await server.call_tool("list_tasks", {"user_id": other}),
            await server.call_tool("add_task", {"title": "For bob", "user_id": other}),
        ]

    task = run(url, other, bobs)
    for result in run(url, user, as_other):
        refusal = problem(result)
        assert refusal["status"] == 403
        assert "tasks" not in refusal
    assert run(url, user, own_of(user))["total"] == 0
    assert [listed["id"] for listed in run(url, other, own_of(other))["tasks"]] == [task["id"]]


def test_an_agents_tools_answer_the_model_the_structured_content(url: str, user: str) -> None:
    """What a model reads: the Agent turns each MCP tool into a function tool; with
    `use_structured_content` its output is the task as JSON, and a refusal is the problem's
    one line and its JSON, not an exception that would end the run."""

    async def steps(server: MCPServerStreamableHttp) -> tuple[list[FunctionTool], Any, Any]:
        agent = Agent(name="todo", mcp_servers=[server])
        function_tools = [
            tool
            for tool in await agent.get_all_tools(RunContextWrapper(None))
            if isinstance(tool, FunctionTool)
        ]
        add_task = next(tool for tool in function_tools if tool.name == "add_task")

        async def invoke(arguments: dict[str, Any]) -> Any:
            text = json.dumps(arguments)
            context = ToolContext(
                context=None, tool_name="add_task", tool_call_id="call-1", tool_arguments=text
            )
            return await add_task.on_invoke_tool(context, text)

        return (
            function_tools,
            await invoke({"title": "From a model"}),
            await invoke({"title": "Not mine", "user_id": f"{user}-bob"}),
        )

    function_tools, added, refused = run(url, user, steps)
    generated = {tool.name: tool for tool in tools(spec())}
    assert [tool.name for tool in function_tools] == list(generated)
    # Not made strict (MCPConfig's default): strict would make every argument required.
    for tool in function_tools:
        assert tool.strict_json_schema is False
        assert tool.params_json_schema == generated[tool.name].input_schema
    assert isinstance(added, str)
    task = json.loads(added)
    assert (task["title"], task["user_id"]) == ("From a model", user)
    summary, problem_text = refused
    assert summary == {
        "type": "text",
        "text": "Forbidden: The user_id argument is not the signed-in user; nothing was read or "
        "written.",
    }
    assert json.loads(problem_text["text"])["status"] == 403
