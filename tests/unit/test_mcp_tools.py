"""The MCP tools are the contract's operations: generated from openapi.yaml (todo_api/mcp/tools.py),
checked by its validators (todo_api/mcp/calls.py), never written beside it."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from todo_api.contract import spec
from todo_api.mcp import calls
from todo_api.mcp.server import mcp_server, sdk_tool
from todo_api.mcp.tools import (
    EXTENSION,
    SpecError,
    ToolDefinition,
    listed,
    resolved,
    tools,
)
from todo_api.web import validators
from todo_api.web.problems import ValidationProblem

# The tools of the Phase III spec, and the parameters it names for each.
PHASE_THREE = {
    "add_task": {"user_id", "title", "description"},
    "list_tasks": {"user_id", "status"},
    "complete_task": {"user_id", "task_id"},
    "delete_task": {"user_id", "task_id"},
    "update_task": {"user_id", "task_id", "title", "description"},
}
ALL = {
    *PHASE_THREE,
    "get_task",
    "restore_task",
    "list_tags",
    "rename_tag",
}


def by_name(source: dict[str, Any] | None = None) -> dict[str, ToolDefinition]:
    return {tool.name: tool for tool in tools(source or spec())}


def marked() -> list[tuple[str, str, dict[str, Any], dict[str, Any]]]:
    """Each operation the spec marks, read straight from the file's dict."""
    return [
        (path, method, item, operation)
        for path, item in spec()["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and EXTENSION in operation
    ]


def test_every_marked_operation_is_one_tool_and_no_other_is() -> None:
    made = by_name()
    assert set(made) == ALL
    assert sorted(op[EXTENSION]["name"] for *_, op in marked()) == sorted(made)
    for path, method, _item, operation in marked():
        tool = made[operation[EXTENSION]["name"]]
        assert (tool.path, tool.method, tool.operation_id) == (
            path,
            method,
            operation["operationId"],
        )
        # Only the token's own family: the `/{user_id}` twins are the same operations.
        assert path.startswith(("/tasks", "/tags"))


def test_the_phase_three_tools_take_the_parameters_it_names() -> None:
    made = by_name()
    for name, parameters in PHASE_THREE.items():
        assert parameters <= set(made[name].input_schema["properties"]), name
    assert made["add_task"].input_schema["required"] == ["title"]
    for name in ("complete_task", "delete_task", "update_task", "get_task", "restore_task"):
        assert made[name].input_schema["required"] == ["task_id"]
    for tool in made.values():
        assert "user_id" not in tool.input_schema["required"]
        assert tool.input_schema["additionalProperties"] is False


def test_each_input_schema_is_the_operations_parameters_and_writable_body_fields() -> None:
    """Derived here independently of the generator: names, requiredness and each schema."""
    source = spec()
    made = by_name()
    for _path, method, item, operation in marked():
        tool = made[operation[EXTENSION]["name"]]
        expected: dict[str, Any] = {}
        for reference in [*item.get("parameters", ()), *operation.get("parameters", ())]:
            parameter = resolved(reference, source)
            headers = operation[EXTENSION].get("headers", {})
            names = [arg for arg, header in headers.items() if header == parameter["name"]]
            if parameter["in"] in {"path", "query"}:
                names = [parameter["name"]]
            for name in names:
                schema = validators.draft4_schema(parameter["schema"])
                if "description" in parameter and "description" not in schema:
                    schema["description"] = parameter["description"].strip()
                expected[name] = schema
        if "requestBody" in operation:
            body = resolved(operation["requestBody"], source)["content"]["application/json"]
            schema = body["schema"]
            properties = schema.get("properties") or schema["allOf"][0]["properties"]
            for name, field in properties.items():
                if not field.get("readOnly"):
                    expected[name] = validators.draft4_schema(field)
                    if method in {"put", "patch"}:  # a partial update's fields have no default
                        expected[name].pop("default", None)
        user_id = source["components"]["parameters"]["UserId"]
        expected["user_id"] = validators.draft4_schema(user_id["schema"]) | {
            "description": user_id["description"]
        }
        assert tool.input_schema["properties"] == expected, tool.name


def test_every_constraint_is_the_contracts_own() -> None:
    made = by_name()
    task = spec()["components"]["schemas"]["TaskInput"]["properties"]
    title = made["add_task"].input_schema["properties"]["title"]
    assert title["maxLength"] == task["title"]["maxLength"]
    assert [part["pattern"] for part in title["allOf"]] == [
        part["pattern"] for part in task["title"]["allOf"]
    ]
    # `nullable` as JSON Schema says it: a model may clear a description with null.
    assert made["update_task"].input_schema["properties"]["description"]["type"] == [
        "string",
        "null",
    ]
    status = made["list_tasks"].input_schema["properties"]["status"]
    assert status["enum"] == ["all", "pending", "active", "completed"]
    assert status["default"] == "all"
    assert made["add_task"].input_schema["properties"]["due_date"]["format"] == "date-time"
    key = made["add_task"].input_schema["properties"]["idempotency_key"]
    assert (
        key["pattern"] == spec()["components"]["parameters"]["IdempotencyKey"]["schema"]["pattern"]
    )


def test_a_change_to_the_contract_is_a_change_to_the_tools() -> None:
    changed = copy.deepcopy(spec())
    changed["components"]["schemas"]["TaskInput"]["properties"]["title"]["maxLength"] = 80
    changed["paths"]["/tasks"]["get"]["summary"] = "Every task"
    made = by_name(changed)
    assert made["add_task"].input_schema["properties"]["title"]["maxLength"] == 80
    assert made["update_task"].input_schema["properties"]["title"]["maxLength"] == 80
    assert made["list_tasks"].description.startswith("Every task")
    del changed["paths"]["/tags"]["get"][EXTENSION]
    assert "list_tags" not in by_name(changed)


def test_descriptions_and_annotations_follow_the_operation() -> None:
    made = by_name()
    create = spec()["paths"]["/tasks"]["post"]
    assert made["add_task"].title == create["summary"]
    assert made["add_task"].description.startswith(create["summary"] + "\n\n")
    assert "quota" in made["add_task"].description
    assert made["list_tasks"].annotations["readOnlyHint"] is True
    assert made["get_task"].annotations["readOnlyHint"] is True
    assert made["delete_task"].annotations["destructiveHint"] is True
    assert made["update_task"].annotations["idempotentHint"] is True
    assert made["add_task"].annotations["idempotentHint"] is False
    # The contract overrides what PATCH implies: without `completed` the call toggles.
    assert made["complete_task"].annotations["idempotentHint"] is False
    for tool in made.values():
        assert tool.annotations["openWorldHint"] is False
        assert tool.annotations["readOnlyHint"] is (tool.method == "get")


def test_output_schemas_are_the_success_answers_and_lists_are_wrapped() -> None:
    made = by_name()
    task = made["get_task"].output_schema
    assert task is not None
    assert task["type"] == "object"
    assert set(task["required"]) == set(spec()["components"]["schemas"]["Task"]["required"])
    assert made["delete_task"].output_schema is None
    listing = made["list_tasks"].output_schema
    assert listing is not None
    assert listing["required"] == ["tasks", "total", "next_cursor"]
    assert listing["properties"]["tasks"]["type"] == "array"
    assert listing["properties"]["tasks"]["maxItems"] == 500
    assert listing["properties"]["next_cursor"]["type"] == ["string", "null"]
    tags = made["list_tags"].output_schema
    assert tags is not None
    assert tags["required"] == ["tags", "total", "next_cursor"]
    assert listed(made["list_tags"], [], 0, None) == {"tags": [], "total": 0, "next_cursor": None}
    with pytest.raises(ValueError, match="does not answer a list"):
        listed(made["get_task"], [], 0, None)


def test_every_schema_is_json_schema_as_mcp_clients_read_it() -> None:
    for tool in by_name().values():
        Draft202012Validator.check_schema(tool.input_schema)
        if tool.output_schema is not None:
            Draft202012Validator.check_schema(tool.output_schema)
            assert tool.output_schema["type"] == "object"


def test_the_input_schema_a_call_is_checked_by_is_the_listed_one() -> None:
    """The SDK looks a tool's input schema up (for a 2026-07-28 call's Mcp-Param-* headers)
    instead of running tools/list: it must find what the list says, and nothing for a tool
    the list does not name."""
    made = by_name()
    server = mcp_server(made.values())
    assert server.get_tool_input_schema is not None
    for name, tool in made.items():
        listed_schema = sdk_tool(tool).model_dump(mode="json", by_alias=True)["inputSchema"]
        assert server.get_tool_input_schema(name) == listed_schema
    assert server.get_tool_input_schema("drop_table") is None


def test_every_tool_has_its_operation_and_every_operation_its_tool() -> None:
    assert {tool.operation_id for tool in by_name().values()} == set(calls.OPERATIONS)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda s: s["paths"]["/{user_id}/tasks"]["get"].update({EXTENSION: {"name": "x"}}),
            "user_id is every tool's own argument",
        ),
        (
            lambda s: s["paths"]["/tasks/{task_id}"]["get"].update(
                {EXTENSION: {"name": "list_tasks"}}
            ),
            "more than once",
        ),
        (
            lambda s: s["paths"]["/tasks/{task_id}"]["get"][EXTENSION].update({"list": "tasks"}),
            "names no list",
        ),
        (lambda s: s["paths"]["/tasks"]["get"][EXTENSION].pop("list"), "must name its member"),
        (
            lambda s: s["paths"]["/tasks"]["get"][EXTENSION].update(
                {"annotations": {"safeHint": True}}
            ),
            "no such annotation",
        ),
        (
            lambda s: s["paths"]["/tasks"]["post"][EXTENSION].update(
                {"headers": {"key": "No-Such-Header"}}
            ),
            "no header parameter",
        ),
    ],
)
def test_a_mark_the_generator_cannot_honour_is_refused(change: Any, message: str) -> None:
    changed = copy.deepcopy(spec())
    change(changed)
    with pytest.raises(SpecError, match=message):
        tools(changed)


def refused(tool: str, **arguments: Any) -> list[dict[str, str]]:
    with pytest.raises(ValidationProblem) as refusal:
        calls.check(by_name()[tool], arguments)
    errors: list[dict[str, str]] = refusal.value.ext["errors"]
    return errors


def test_arguments_are_checked_as_the_http_door_checks_them() -> None:
    long_title = {"title": "x" * 201}
    schema = by_name()["add_task"].body_schema
    assert schema is not None
    with pytest.raises(ValidationProblem) as http:
        validators.check_body(long_title, schema, required=True)
    assert refused("add_task", **long_title) == http.value.ext["errors"]
    assert refused("add_task") == [{"pointer": "#/title", "detail": "is required"}]
    assert refused("add_task", title="t", colour="red") == [
        {"pointer": "#/colour", "detail": "unknown field"}
    ]
    assert refused("get_task", task_id="7") == [
        {"parameter": "task_id", "detail": "'7' is not of type 'integer'"}
    ]
    # Every error at once, parameters and body alike.
    errors = refused("update_task", task_id=0, priority="urgent", tags=["a", "a"])
    assert [error.get("parameter") or error.get("pointer") for error in errors] == [
        "task_id",
        "#/priority",
        "#/tags",
    ]
    assert refused("list_tasks", q="a\ud800") == [
        {"parameter": "q", "detail": "contains an unpaired surrogate escape"}
    ]


def test_a_checked_call_has_the_operations_defaults() -> None:
    checked = calls.check(by_name()["list_tasks"], {"status": "pending"})
    assert checked.parameters == {
        "status": "pending",
        "sort": "created",
        "order": "desc",
        "limit": 100,
    }
    created = calls.check(by_name()["add_task"], {"title": "t", "idempotency_key": "k-1"})
    assert created.parameters == {"Idempotency-Key": "k-1"}
    assert created.body == {"title": "t"}


def test_an_update_advertises_no_defaults_a_create_does() -> None:
    """A default tells a client what to send; sent to a partial update, it would reset the
    field."""
    made = by_name()
    created = made["add_task"].input_schema["properties"]
    assert created["priority"]["default"] == "medium"
    for name in ("update_task", "complete_task"):
        for field, schema in made[name].input_schema["properties"].items():
            assert "default" not in schema, (name, field)


def test_renaming_a_tag_is_marked_destructive() -> None:
    """Renamed into a tag a task already carries, the two merge for good."""
    assert by_name()["rename_tag"].annotations["destructiveHint"] is True
