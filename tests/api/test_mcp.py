"""MCP at /api/mcp with the official SDK's client, against the app served in this process: every
tool, as the token's user only, through the same rules and edge as the HTTP API."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import jsonschema
import mcp_types as types
import pytest
from mcp.shared.exceptions import MCPError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from tests.conftest import AUDIENCE, ISSUER, SECRET, Client, bearer, make_token
from tests.mcp_client import call, in_process, problem, session, structured, summary
from tests.prometheus import samples, value
from tests.spans import span_exporter
from tests.sse import EventReader
from todo_api.app import create_app
from todo_api.contract import spec
from todo_api.mcp import calls
from todo_api.mcp.tools import tools
from todo_api.settings import Settings
from todo_api.web.problems import UNEXPECTED

JSON_RPC = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    database = tmp_path_factory.mktemp("mcp") / "todo.db"
    settings = Settings(
        database_url=f"sqlite:///{database}",
        auth_secret=SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        validate_responses=True,
        metrics_enabled=True,
        rate_limit_per_user=1_000_000,
        rate_limit_per_address=1_000_000,
    )
    with in_process(create_app(settings)) as served:
        yield served


@pytest.fixture
def url(base: str) -> str:
    return f"{base}/mcp"


@pytest.fixture
def user() -> str:
    """A user of the test's own, so that no test sees another's tasks."""
    return f"user-{uuid.uuid4().hex[:12]}"


def rest(base: str, user: str, method: str, path: str, **kwargs: Any) -> httpx2.Response:
    return httpx2.request(
        method, f"{base}{path}", headers=bearer(make_token(user)), timeout=30, **kwargs
    )


def test_the_tools_listed_are_the_contracts(url: str, user: str) -> None:
    async def listed() -> list[types.Tool]:
        async with session(url, user) as opened:
            return (await opened.list_tools()).tools

    generated = {tool.name: tool for tool in tools(spec())}
    served = asyncio.run(listed())
    assert [tool.name for tool in served] == list(generated)
    for tool in served:
        made = generated[tool.name]
        assert tool.input_schema == made.input_schema
        assert tool.output_schema == made.output_schema
        assert tool.description == made.description
        assert tool.annotations is not None
        assert tool.annotations.read_only_hint is made.annotations["readOnlyHint"]


def test_every_tool_does_what_its_operation_does(base: str, url: str, user: str) -> None:
    created = structured(
        call(
            url,
            user,
            "add_task",
            title="Buy milk",
            description="two litres",
            priority="high",
            tags=["home"],
            due_date="2030-01-02T09:00:00Z",
        )
    )
    task_id = created["id"]
    assert created["user_id"] == user
    assert created["priority"] == "high"
    # The same task, as the HTTP API answers it.
    assert rest(base, user, "GET", f"/tasks/{task_id}").json() == created

    got = call(url, user, "get_task", task_id=task_id)
    assert structured(got) == created
    assert summary(got).startswith(f'Task: task {task_id} "Buy milk" (pending; priority high')

    updated = structured(call(url, user, "update_task", task_id=task_id, title="Buy oat milk"))
    assert updated["title"] == "Buy oat milk"
    assert updated["description"] == "two litres"
    cleared = structured(call(url, user, "update_task", task_id=task_id, description=None))
    assert cleared["description"] is None

    done = structured(call(url, user, "complete_task", task_id=task_id, completed=True))
    assert done["completed"] is True
    again = structured(call(url, user, "complete_task", task_id=task_id, completed=True))
    assert again == done  # setting the value it has writes nothing
    toggled = structured(call(url, user, "complete_task", task_id=task_id))
    assert toggled["completed"] is False

    structured(call(url, user, "add_task", title="Walk", tags=["home", "out"]))
    pending = structured(call(url, user, "list_tasks", status="pending", sort="title", order="asc"))
    assert [task["title"] for task in pending["tasks"]] == ["Buy oat milk", "Walk"]
    assert (pending["total"], pending["next_cursor"]) == (2, None)
    first = structured(call(url, user, "list_tasks", limit=1))
    assert first["total"] == 2
    assert first["next_cursor"] is not None
    rest_of = structured(call(url, user, "list_tasks", limit=1, cursor=first["next_cursor"]))
    assert rest_of["next_cursor"] is None
    assert {t["id"] for t in first["tasks"] + rest_of["tasks"]} == {
        t["id"] for t in pending["tasks"]
    }

    listed_tags = call(url, user, "list_tags")
    assert structured(listed_tags) == {
        "tags": [
            {"tag": "home", "pending": 2, "completed": 0},
            {"tag": "out", "pending": 1, "completed": 0},
        ],
        "total": 2,
        "next_cursor": None,
    }
    assert summary(listed_tags).startswith('2 of 2 tags: "home" (2 pending, 0 completed)')
    renamed = structured(call(url, user, "rename_tag", tag="home", to="house"))
    assert renamed == {"tag": "house", "pending": 2, "completed": 0}

    deleted = call(url, user, "delete_task", task_id=task_id)
    assert not deleted.is_error
    assert deleted.structured_content is None
    assert summary(deleted).startswith(f"Deleted task {task_id}")
    assert rest(base, user, "GET", f"/tasks/{task_id}").status_code == 404
    restored = structured(call(url, user, "restore_task", task_id=task_id))
    assert restored["id"] == task_id
    assert rest(base, user, "GET", f"/tasks/{task_id}").status_code == 200


def test_an_idempotency_key_makes_a_task_once(base: str, url: str, user: str) -> None:
    first = call(url, user, "add_task", title="Once", idempotency_key="agent-retry-1")
    second = call(url, user, "add_task", title="Once", idempotency_key="agent-retry-1")
    assert structured(first) == structured(second)
    assert summary(second).startswith("Already created (same idempotency_key)")
    assert rest(base, user, "GET", "/tasks").headers["X-Total-Count"] == "1"
    reused = problem(call(url, user, "add_task", title="Other", idempotency_key="agent-retry-1"))
    assert reused["status"] == 422
    assert reused["errors"] == [
        {
            "parameter": "Idempotency-Key",
            "detail": "was already used with a different request; use a new key for a new task",
        }
    ]


def test_a_user_reaches_only_their_own_tasks(base: str, url: str, user: str) -> None:
    other = f"{user}-bob"
    task = structured(call(url, user, "add_task", title="Mine"))
    for tool, arguments in [
        ("get_task", {}),
        ("complete_task", {"completed": True}),
        ("update_task", {"title": "Taken"}),
        ("delete_task", {}),
        ("restore_task", {}),
    ]:
        refused = problem(call(url, other, tool, task_id=task["id"], **arguments))
        assert (refused["status"], refused["detail"]) == (404, f"There is no task {task['id']}.")
    assert structured(call(url, other, "list_tasks"))["total"] == 0
    assert structured(call(url, other, "list_tags"))["total"] == 0
    assert rest(base, user, "GET", f"/tasks/{task['id']}").json() == task


def test_a_user_id_other_than_the_tokens_reads_and_writes_nothing(
    base: str, url: str, user: str
) -> None:
    other = f"{user}-bob"
    structured(call(url, other, "add_task", title="Bob's"))
    own = structured(call(url, user, "add_task", title="Mine", user_id=user))
    assert own["user_id"] == user
    for tool, arguments in [
        ("list_tasks", {}),
        ("add_task", {"title": "For bob"}),
        ("get_task", {"task_id": own["id"]}),
        ("delete_task", {"task_id": own["id"]}),
    ]:
        result = call(url, user, tool, user_id=other, **arguments)
        refused = problem(result)
        assert refused["status"] == 403
        assert "not the signed-in user" in summary(result)
    assert rest(base, user, "GET", "/tasks").headers["X-Total-Count"] == "1"
    assert rest(base, other, "GET", "/tasks").headers["X-Total-Count"] == "1"


def test_refused_arguments_are_the_http_422_problem(base: str, url: str, user: str) -> None:
    body = {"title": "x" * 201, "priority": "urgent"}
    http = rest(base, user, "POST", "/tasks", json=body)
    assert http.status_code == 422
    result = call(url, user, "add_task", **body)
    refused = problem(result)
    assert refused["status"] == 422
    assert refused["detail"] == http.json()["detail"]
    assert refused["errors"] == http.json()["errors"]
    assert summary(result) == f"Unprocessable Content: {http.json()['detail']}"

    missing = problem(call(url, user, "add_task", description="no title"))
    assert missing["errors"] == [{"pointer": "#/title", "detail": "is required"}]
    wrong = problem(call(url, user, "get_task", task_id="one"))
    assert wrong["errors"] == [{"parameter": "task_id", "detail": "'one' is not of type 'integer'"}]
    unknown = problem(call(url, user, "list_tasks", colour="red", limit=0))
    assert unknown["errors"] == [
        {"pointer": "#/colour", "detail": "unknown field"},
        {"parameter": "limit", "detail": "0 is less than the minimum of 1"},
    ]
    # What a schema cannot say, the rules say, as over HTTP.
    rule = problem(call(url, user, "add_task", title="t", recurrence="FREQ=HOURLY"))
    assert rule["status"] == 422
    assert rest(base, user, "GET", "/tasks").headers["X-Total-Count"] == "0"


def test_a_body_over_the_edges_limit_is_413_before_mcp(url: str, user: str) -> None:
    arguments = {"title": "big", "description": "x" * 70_000}
    message = {
        "jsonrpc": "2.0",
        "id": 1,
        "method": "tools/call",
        "params": {"name": "add_task", "arguments": arguments},
    }
    answer = httpx2.post(
        url, content=json.dumps(message), headers=JSON_RPC | bearer(make_token(user))
    )
    assert answer.status_code == 413
    assert answer.headers["content-type"] == "application/problem+json"


def test_an_unknown_tool_is_a_protocol_error(url: str, user: str) -> None:
    async def unknown() -> MCPError:
        async with session(url, user) as opened:
            with pytest.raises(MCPError) as refused:
                await opened.call_tool("drop_table", {})
            # The session goes on.
            assert (await opened.list_tools()).tools
            return refused.value

    refused = asyncio.run(unknown())
    assert (refused.code, refused.message) == (types.INVALID_PARAMS, "Unknown tool: 'drop_table'")


def test_ten_sessions_at_once_each_get_their_own(url: str, user: str) -> None:
    async def one(index: int) -> dict[str, Any]:
        async with session(url, f"{user}-{index}") as opened:
            created = await opened.call_tool("add_task", {"title": f"task {index}"})
            listed = await opened.call_tool("list_tasks", {})
            assert not created.is_error
            assert not listed.is_error
            assert isinstance(listed.structured_content, dict)
            return listed.structured_content

    async def all_at_once() -> list[dict[str, Any]]:
        return list(await asyncio.gather(*(one(index) for index in range(10))))

    for index, listed in enumerate(asyncio.run(all_at_once())):
        assert [task["title"] for task in listed["tasks"]] == [f"task {index}"]
        assert listed["tasks"][0]["user_id"] == f"{user}-{index}"


def test_without_a_good_token_401_names_the_resource_metadata(base: str, url: str) -> None:
    metadata = f"{base.removesuffix('/api')}/.well-known/oauth-protected-resource/api/mcp"
    hello = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    missing = httpx2.post(url, json=hello, headers=JSON_RPC)
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == (
        f'Bearer realm="todo-api", resource_metadata="{metadata}"'
    )
    assert missing.headers["content-type"] == "application/problem+json"
    expired = bearer(make_token("alice", exp=1))
    refused = httpx2.post(url, json=hello, headers=JSON_RPC | expired)
    assert refused.status_code == 401
    assert refused.headers["www-authenticate"] == (
        f'Bearer realm="todo-api", resource_metadata="{metadata}", error="invalid_token"'
    )
    document = httpx2.get(metadata)
    assert document.status_code == 200
    assert document.json()["resource"] == url
    assert "authorization_servers" not in document.json()  # no BETTER_AUTH_URL here


def test_a_write_through_mcp_reaches_the_feed_and_open_streams(
    base: str, url: str, user: str
) -> None:
    headers = bearer(make_token(user))
    with EventReader(f"{base}/tasks/events", headers) as stream:
        created = structured(call(url, user, "add_task", title="Streamed"))
        event = stream.next(timeout=10)
        while event.event != "change":
            event = stream.next(timeout=10)
        assert event.json() == {"op": "upsert", "task": created}
    feed = rest(base, user, "GET", "/tasks/changes").json()
    assert feed["changes"] == [{"op": "upsert", "task": created}]


def test_calls_are_counted_and_logged(
    base: str, url: str, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    def counted(outcome: str) -> float:
        scraped = samples(httpx2.get(f"{base}/metrics").text)
        return value(scraped, "todo_api_mcp_tool_calls_total", tool="get_task", outcome=outcome)

    ok, error = counted("ok"), counted("error")
    task = structured(call(url, user, "add_task", title="Watched"))
    with caplog.at_level(logging.INFO, logger="todo_api.access"):
        call(url, user, "get_task", task_id=task["id"])
        call(url, user, "get_task", task_id=task["id"] + 1000)
    assert (counted("ok"), counted("error")) == (ok + 1, error + 1)
    lines = [r for r in caplog.records if getattr(r, "event", None) == "tool_call"]
    assert [(r.fields["tool"], r.fields["outcome"]) for r in lines] == [  # type: ignore[attr-defined]
        ("get_task", "ok"),
        ("get_task", "error"),
    ]
    for line in lines:
        fields = line.fields  # type: ignore[attr-defined]
        assert fields["user"] == user
        assert fields["request_id"]
        assert fields["duration_ms"] >= 0
    requests = [r for r in caplog.records if getattr(r, "event", None) == "request"]
    assert {r.fields["request_id"] for r in requests} >= {  # type: ignore[attr-defined]
        r.fields["request_id"]
        for r in lines  # type: ignore[attr-defined]
    }
    assert {r.fields["route"] for r in requests} == {"/api/mcp"}  # type: ignore[attr-defined]


def test_the_per_user_limit_counts_mcp_calls(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'todo.db'}",
        auth_secret=SECRET,
        rate_limit_per_user=3,
        rate_limit_per_address=1_000,
    )
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    with in_process(create_app(settings)) as served:
        alice = JSON_RPC | bearer(make_token("alice", iss=None, aud=None))
        # Seven calls over a quota of three: should a (fixed) window end among them, one of
        # the two windows still gets a fourth.
        answers = [httpx2.post(f"{served}/mcp", json=listing, headers=alice) for _ in range(7)]
        other = httpx2.post(
            f"{served}/mcp", json=listing, headers=JSON_RPC | bearer(make_token("bob"))
        )
    statuses = [answer.status_code for answer in answers]
    assert statuses[:3] == [200, 200, 200]
    refused = [answer for answer in answers if answer.status_code == 429]
    assert refused, statuses
    assert refused[0].headers["ratelimit-policy"] == '"user";q=3;w=60'
    assert other.status_code == 200


def test_the_metadata_names_better_auth_as_the_authorization_server(serve: Client) -> None:
    client = serve(better_auth_url="https://auth.example.com")
    document = client.get("/.well-known/oauth-protected-resource/api/mcp")
    assert document.status_code == 200
    assert document.json() == {
        "resource": "http://testserver/api/mcp",
        "authorization_servers": ["https://auth.example.com/api/auth"],
        "bearer_methods_supported": ["header"],
        "resource_name": "Todo API (MCP)",
        "resource_documentation": "http://testserver/api/docs",
    }
    assert client.post("/.well-known/oauth-protected-resource/api/mcp").status_code == 405


def test_mcp_off_is_404(serve: Client) -> None:
    client = serve(auth_secret=SECRET, mcp_enabled=False)
    alice = JSON_RPC | bearer(make_token("alice"))
    listing = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}
    assert client.post("/api/mcp", json=listing, headers=alice).status_code == 404
    assert client.get("/.well-known/oauth-protected-resource/api/mcp").status_code == 404
    # The rest of the API is as it was.
    assert client.get("/api/tasks", headers=alice).status_code == 200


def test_a_call_is_a_span_within_its_requests(tmp_path: Path) -> None:
    exporter = span_exporter()
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'todo.db'}",
        auth_secret=SECRET,
        otel_endpoint="http://127.0.0.1:4318",
    )
    with in_process(create_app(settings)) as served:
        exporter.clear()
        problem(call(f"{served}/mcp", "alice", "get_task", task_id=7))
    finished = exporter.get_finished_spans()
    [tool] = [span for span in finished if span.name == "tools/call get_task"]
    assert tool.attributes is not None
    assert tool.attributes["gen_ai.tool.name"] == "get_task"
    assert tool.attributes["todo_api.mcp.outcome"] == "error"
    # In the agent's trace (the SDK's client sends its context in `_meta`), beside the
    # request's own server span.
    parents = {span.context.span_id: span for span in finished}
    assert tool.parent is not None
    assert parents[tool.parent.span_id].name == "MCP send tools/call get_task"
    assert "POST /api/mcp" in {span.name for span in finished}


def test_domain_errors_are_the_http_problems(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'todo.db'}", auth_secret=SECRET, task_quota=1
    )
    with in_process(create_app(settings)) as served:
        structured(call(f"{served}/mcp", "alice", "add_task", title="The one"))
        over = problem(call(f"{served}/mcp", "alice", "add_task", title="One more"))
        http = rest(served, "alice", "POST", "/tasks", json={"title": "One more"})
    assert http.status_code == 409
    assert {key: over[key] for key in ("type", "title", "status", "detail")} == {
        key: http.json()[key] for key in ("type", "title", "status", "detail")
    }


def test_a_fault_is_a_tool_error_without_its_traceback(
    url: str, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*_: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setitem(calls.OPERATIONS, "handlers.tasks.get_task", broken)
    result = call(url, user, "get_task", task_id=1)
    failed = problem(result)
    assert (failed["status"], failed["detail"]) == (500, UNEXPECTED)
    assert "secret internals" not in result.model_dump_json()


def test_a_browser_client_may_call_from_an_allowed_origin(serve: Client) -> None:
    client = serve(auth_secret=SECRET, cors_origins=("http://localhost:6274",))
    preflight = client.options(
        "/api/mcp",
        headers={
            "Origin": "http://localhost:6274",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization, content-type, mcp-protocol-version",
        },
    )
    assert preflight.status_code == 200
    refused = client.post("/api/mcp", json={}, headers={"Origin": "http://localhost:6274"})
    assert refused.status_code == 401
    exposed = refused.headers["Access-Control-Expose-Headers"].lower()
    assert "www-authenticate" in exposed


def test_no_stream_is_opened_and_no_session_ended(url: str, user: str) -> None:
    """Stateless: a GET would hold a connection and a place to work for nothing."""
    for method in ("GET", "DELETE"):
        answer = httpx2.request(
            method, url, headers=bearer(make_token(user)) | {"Accept": "text/event-stream"}
        )
        assert answer.status_code == 405
        assert answer.headers["allow"] == "POST"


def test_every_result_holds_to_its_tools_output_schema_errors_included(url: str, user: str) -> None:
    """As the TypeScript SDK's client checks: structured content, whenever a result has it,
    refusals included, must match the tool's output schema; a refusal carries none."""

    async def results() -> tuple[list[types.Tool], list[tuple[str, types.CallToolResult]]]:
        async with session(url, user) as opened:
            listed = (await opened.list_tools()).tools
            made = await opened.call_tool("add_task", {"title": "Held to its schema"})
            task_id = made.structured_content["id"] if made.structured_content else 0
            calls_made = [
                ("add_task", {"title": "Held to its schema"}),
                ("add_task", {"title": ""}),
                ("get_task", {"task_id": task_id}),
                ("get_task", {"task_id": 999_999_999}),
                ("update_task", {"task_id": 999_999_999, "title": "x"}),
                ("complete_task", {"task_id": task_id}),
                ("list_tasks", {"limit": 5}),
                ("list_tasks", {"status": "nonsense"}),
                ("list_tags", {}),
                ("rename_tag", {"tag": "absent", "to": "present"}),
            ]
            answered = [(name, await opened.call_tool(name, args)) for name, args in calls_made]
            return listed, answered

    listed, answered = asyncio.run(results())
    schemas = {tool.name: tool.output_schema for tool in listed}
    assert any(result.is_error for _, result in answered)
    assert any(not result.is_error for _, result in answered)
    for name, result in answered:
        if result.is_error:
            assert result.structured_content is None, (name, result.structured_content)
            problem(result)
        elif schemas[name] is not None:
            jsonschema.Draft202012Validator(schemas[name]).validate(result.structured_content)


def test_a_database_outage_is_a_tool_error_that_says_when_to_retry(
    url: str, user: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The 503 the HTTP door answers, with its Retry-After as `retry_after` (seconds): a tool
    error has no headers."""

    def down(*_: Any) -> Any:
        raise PoolTimeout("QueuePool limit reached")

    monkeypatch.setitem(calls.OPERATIONS, "handlers.tasks.list_tasks", down)
    failed = problem(call(url, user, "list_tasks"))
    assert failed["status"] == 503
    assert failed["retry_after"] >= 1


def test_the_metadata_names_the_configured_resource_and_better_auths_issuer(
    serve: Client,
) -> None:
    """The resource Better Auth's access tokens must name, and the issuer they must carry:
    what a client is sent to is what the authenticator holds tokens to."""
    client = serve(
        better_auth_url="https://auth.example.com",
        better_auth_mcp_resource="https://todo.example.com/api/mcp",
    )
    document = client.get("/.well-known/oauth-protected-resource/api/mcp").json()
    assert document["resource"] == "https://todo.example.com/api/mcp"
    assert document["authorization_servers"] == ["https://auth.example.com/api/auth"]
    challenge = client.post("/api/mcp", json={}).headers["WWW-Authenticate"]
    assert (
        'resource_metadata="https://todo.example.com/.well-known/oauth-protected-resource/api/mcp"'
        in challenge
    )
