"""The MCP door: the official SDK's low-level `Server` with the tools the contract makes
(tools.py), served over Streamable HTTP at `/api/mcp`, stateless and answering JSON, inside the
same app as the HTTP API, so that every request passes the same edge (body and head limits,
rate limits, admission, the access line).

The door checks the bearer token as the HTTP API does (web/credentials.py): without a good one,
401 with a challenge that names the protected-resource metadata (RFC 9728), which
`/.well-known/oauth-protected-resource/api/mcp` serves. The principal rides in the request's
scope to the call (calls.py), which acts for that user alone.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlsplit

import mcp_types as types
from connexion.lifecycle import ConnexionRequest
from mcp.server import Server, ServerRequestContext
from mcp.server.streamable_http_manager import StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from mcp.shared.exceptions import MCPError
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from todo_api.auth.errors import CredentialsUncheckable, Unauthenticated
from todo_api.contract import base_path
from todo_api.logs import CURRENT_REQUEST, note_error
from todo_api.mcp import calls
from todo_api.mcp.tools import ToolDefinition
from todo_api.web.credentials import signed_in
from todo_api.web.observe import PROTECTED_RESOURCE_METADATA, mcp_metadata_path, mcp_path
from todo_api.web.problems import REALM, as_problem, asgi_response
from todo_api.web.ratelimit import bearer_token
from todo_api.web.served_contract import DOCS_PATH

# Where the app's lifespan leaves the running session manager (its state, `request.state`).
MANAGER = "mcp"
NAME = "todo-api"
INSTRUCTIONS = (
    "The signed-in user's tasks and tags, as the Todo API serves them over HTTP. Every tool "
    "acts for the user whose bearer token the connection carries; user_id is optional and, "
    "when sent, must be that user's id. A refused call says why, field by field."
)
MISSING_CREDENTIAL = "No authorization token provided"
MAX_NAME_SHOWN = 100


def mcp_server(definitions: Iterable[ToolDefinition], version: str = "") -> Server[Any]:
    """The SDK's server, listing `definitions` and calling them through calls.py."""
    tools = {tool.name: tool for tool in definitions}
    listing = types.ListToolsResult(tools=[sdk_tool(tool) for tool in tools.values()])

    async def list_tools(
        _ctx: ServerRequestContext[Any, Any], _params: types.PaginatedRequestParams | None
    ) -> types.ListToolsResult:
        return listing

    async def call_tool(
        ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        request = ctx.request
        if not isinstance(request, Request):
            raise MCPError(types.INTERNAL_ERROR, "Tools are served over HTTP only.")
        if params.name not in tools:
            calls.unknown_tool(request.scope["state"].get("metrics"))
            shown = params.name[:MAX_NAME_SHOWN]
            raise MCPError(types.INVALID_PARAMS, f"Unknown tool: {shown!r}")
        result = await calls.call(tools, request.scope, params.name, params.arguments or {})
        return sdk_result(result)

    def input_schema(name: str) -> dict[str, Any] | None:
        tool = tools.get(name)
        return None if tool is None else tool.input_schema

    return Server(
        NAME,
        version=version,
        instructions=INSTRUCTIONS,
        # A 2026-07-28 client's tools/call has its Mcp-Param-* headers checked against the
        # tool's input schema: found here, the SDK need not run and serialize the whole
        # tools/list for each call. The list is everyone's, so this is the same schema.
        get_tool_input_schema=input_schema,
        on_list_tools=list_tools,
        on_call_tool=call_tool,
    )


def sdk_tool(tool: ToolDefinition) -> types.Tool:
    return types.Tool(
        name=tool.name,
        title=tool.title,
        description=tool.description,
        input_schema=tool.input_schema,
        output_schema=tool.output_schema,
        annotations=types.ToolAnnotations(
            title=tool.title,
            read_only_hint=tool.annotations.get("readOnlyHint"),
            destructive_hint=tool.annotations.get("destructiveHint"),
            idempotent_hint=tool.annotations.get("idempotentHint"),
            open_world_hint=tool.annotations.get("openWorldHint"),
        ),
    )


def sdk_result(result: calls.Result) -> types.CallToolResult:
    """The summary first, for a model to read; then, as JSON text, the structured content (for
    clients that read text only, as MCP asks of a tool with an output schema) or, for a
    refusal, the problem. A refusal carries no structured content: clients hold structured
    content to the tool's output schema, which a problem is not."""
    content: list[types.ContentBlock] = [types.TextContent(text=result.summary)]
    shown = result.problem if result.is_error else result.structured
    if shown is not None:
        content.append(types.TextContent(text=json.dumps(shown, ensure_ascii=False)))
    structured = None if result.is_error else result.structured
    return types.CallToolResult(
        content=content, structured_content=structured, is_error=result.is_error
    )


def session_manager(server: Server[Any], max_body_bytes: int) -> StreamableHTTPSessionManager:
    """Stateless (each request stands alone: any process of several may answer it) and JSON
    (one answer per request, no stream). Its own Host and Origin checks are off: the hosts are
    the deployment's to name, browsers are held to CORS_ORIGINS before this, and the only
    credential is a bearer token, which no page can make a browser send."""
    return StreamableHTTPSessionManager(
        app=server,
        stateless=True,
        json_response=True,
        max_request_body_size=max_body_bytes,
        security_settings=TransportSecuritySettings(enable_dns_rebinding_protection=False),
    )


class McpDoor:
    """The ASGI app at `/api/mcp`: the bearer check, then the SDK's session manager."""

    def __init__(self, resource: str | None = None) -> None:
        self.resource = resource

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            # Stateless, there is no session to stream to (a GET would hold its connection
            # and a place to work for nothing) nor one to end (DELETE): MCP's answer is 405.
            detail = "MCP messages are sent with POST; this server opens no stream."
            await asgi_response(405, detail, {"Allow": "POST"})(scope, receive, send)
            return
        request = ConnexionRequest(scope, receive)
        token = bearer_token(request.headers.get("authorization"))
        if token is None:
            challenge = _challenge(scope, self.resource, MISSING_CREDENTIAL, invalid=False)
            await challenge(scope, receive, send)
            return
        try:
            principal = await signed_in(request, token)
        except Unauthenticated as refused:
            note_error(type(refused).__name__)
            challenge = _challenge(scope, self.resource, refused.detail, invalid=True)
            await challenge(scope, receive, send)
            return
        except CredentialsUncheckable as unchecked:
            raise as_problem(unchecked) from None
        manager: StreamableHTTPSessionManager = scope["state"][MANAGER]
        called = {
            **scope,
            calls.PRINCIPAL: principal,
            calls.REQUEST_CONTEXT: CURRENT_REQUEST.get(),
        }
        await manager.handle_request(called, receive, send)


def _challenge(scope: Scope, resource: str | None, detail: str, *, invalid: bool) -> Any:
    """401 naming where the protected resource's metadata is (RFC 9728 section 5.1), and, for
    a credential that was sent, that it is not good (RFC 6750 section 3)."""
    challenge = f'{REALM}, resource_metadata="{metadata_url(scope, resource)}"'
    if invalid:
        challenge += ', error="invalid_token"'
    return asgi_response(401, detail, {"WWW-Authenticate": challenge})


def metadata_url(scope: Scope, resource: str | None) -> str:
    """RFC 9728 section 3.1: the well-known URI of the resource's metadata. The resource is
    BETTER_AUTH_MCP_RESOURCE where set (the one the tokens name); else `/api/mcp` on the server
    the request was sent to."""
    if resource is None:
        return _url(scope, mcp_metadata_path())
    named = urlsplit(resource)
    return f"{named.scheme}://{named.netloc}{PROTECTED_RESOURCE_METADATA}{named.path.rstrip('/')}"


class ResourceMetadata:
    """RFC 9728's protected-resource metadata of `/api/mcp`: the resource (the one Better
    Auth's access tokens must name, where set), and Better Auth's OAuth issuer as its
    authorization server when there is one."""

    def __init__(self, authorization_server: str | None, resource: str | None = None) -> None:
        self.authorization_server = authorization_server
        self.resource = resource

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] not in {"GET", "HEAD"}:
            answer = asgi_response(405, "The metadata is read with GET.", {"Allow": "GET, HEAD"})
            await answer(scope, receive, send)
            return
        await JSONResponse(self.document(scope))(scope, receive, send)

    def document(self, scope: Scope) -> dict[str, Any]:
        document: dict[str, Any] = {"resource": self.resource or _url(scope, mcp_path())}
        if self.authorization_server:
            document["authorization_servers"] = [self.authorization_server]
        document |= {
            "bearer_methods_supported": ["header"],
            "resource_name": "Todo API (MCP)",
            "resource_documentation": _url(scope, base_path() + DOCS_PATH),
        }
        return document


def _url(scope: Mapping[str, Any], path: str) -> str:
    """`path` on the server the request was sent to, as the client named it."""
    return str(Request(dict(scope)).url.replace(path=path, query="", fragment=""))
