"""The MCP tools called in process, for the chatbot's agent: the same checks, use cases,
refusals, counts and log lines as a call over `/api/mcp` (calls.py), for the user the door
signed in, and no other (a `user_id` argument that is not that user's is refused)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from starlette.types import Scope

from todo_api.auth.authenticator import Principal
from todo_api.logs import CURRENT_REQUEST
from todo_api.mcp import calls
from todo_api.mcp.tools import ToolDefinition
from todo_api.usecases.chat import ToolCaller, ToolOutcome, ToolSpec


class InProcessTools:
    def __init__(self, definitions: Iterable[ToolDefinition]) -> None:
        self._tools = {tool.name: tool for tool in definitions}

    def specs(self) -> list[ToolSpec]:
        return [
            ToolSpec(tool.name, tool.description, tool.input_schema)
            for tool in self._tools.values()
        ]

    def bound(self, scope: Scope, user: str) -> ToolCaller:
        """The tools as `user`, within the request `scope` (its state: the store, metrics)."""

        async def call(name: str, arguments: Mapping[str, Any]) -> ToolOutcome:
            if name not in self._tools:
                calls.unknown_tool(scope["state"].get("metrics"))
                return ToolOutcome("refused", f"Refused: there is no tool named {name[:100]!r}.")
            called = {
                **scope,
                calls.PRINCIPAL: Principal(user),
                calls.REQUEST_CONTEXT: CURRENT_REQUEST.get(),
            }
            result = await calls.call(self._tools, called, name, arguments)
            return ToolOutcome(result.outcome, result.summary, result.problem or result.structured)

        return call
