"""The spec is valid, complete, and the code agrees with it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from connexion.exceptions import ResolverError
from openapi_spec_validator import validate
from openapi_spec_validator.readers import read_from_filename
from starlette.testclient import TestClient

from storage import WRITABLE_FIELDS
from tests.conftest import SECRET
from todo_api.app import create_app
from todo_api.contract import SPEC_DIR, SPEC_FILE, spec, task_properties, writable_task_fields
from todo_api.settings import Settings


def test_spec_is_valid_openapi_3_0_3() -> None:
    document, _ = read_from_filename(str(SPEC_DIR / SPEC_FILE))
    assert document["openapi"] == "3.0.3"
    validate(document)


def _walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)


def test_every_integer_is_bounded() -> None:
    integers = [n for n in _walk(spec()) if n.get("type") == "integer"]
    assert integers
    for schema in integers:
        assert "minimum" in schema, schema
        assert "maximum" in schema, schema


def test_every_string_a_client_sends_is_bounded() -> None:
    components = spec()["components"]
    parameters = [p["schema"] for p in components["parameters"].values()]
    writable = [task_properties()[name] for name in writable_task_fields()]
    strings = [
        schema
        for schema in [*parameters, *writable, components["schemas"]["Tag"]]
        if schema.get("type") == "string" and "enum" not in schema
    ]
    assert len(strings) >= 8
    for schema in strings:
        assert "maxLength" in schema, schema


def test_operations_on_both_families_match() -> None:
    paths = spec()["paths"]
    for own, by_user in [
        ("/tasks", "/{user_id}/tasks"),
        ("/tasks/{task_id}", "/{user_id}/tasks/{task_id}"),
        ("/tasks/{task_id}/complete", "/{user_id}/tasks/{task_id}/complete"),
        ("/tasks/{task_id}/restore", "/{user_id}/tasks/{task_id}/restore"),
        ("/tasks/changes", "/{user_id}/tasks/changes"),
    ]:
        methods = {m for m in paths[own] if m != "parameters"}
        assert methods == {m for m in paths[by_user] if m != "parameters"}
        for method in methods:
            own_responses = dict(paths[own][method]["responses"])
            user_responses = dict(paths[by_user][method]["responses"])
            if method == "post" and own == "/tasks":  # links lead into each family's own ops
                assert own_responses.pop("201") != user_responses.pop("201")
            assert own_responses == user_responses
            assert paths[own][method].get("requestBody") == paths[by_user][method].get(
                "requestBody"
            )
            assert "403" in paths[by_user][method]["responses"]


def test_create_links_lead_to_every_item_operation_of_its_family() -> None:
    responses = spec()["components"]["responses"]
    for component, module in [("TaskCreated", "tasks"), ("UserTaskCreated", "user_tasks")]:
        links = responses[component]["links"].values()
        targets = {link["operationId"] for link in links}
        assert targets == {
            f"handlers.{module}.{name}"
            for name in (
                "get_task",
                "update_task",
                "put_task",
                "complete_task",
                "post_complete_task",
                "delete_task",
                "restore_task",
            )
        }
        assert all(link["parameters"]["task_id"] == "$response.body#/id" for link in links)


def test_storage_writes_exactly_the_specs_writable_fields() -> None:
    assert set(WRITABLE_FIELDS) == set(writable_task_fields())


def test_created_task_gets_the_specs_defaults(client: TestClient, alice: dict[str, str]) -> None:
    task = client.post("/api/tasks", json={"title": "defaults"}, headers=alice).json()
    for name in writable_task_fields():
        if name != "title":
            assert task[name] == task_properties()[name].get("default"), name


def test_app_with_an_unresolvable_operation_fails_at_start(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import handlers.tasks

    monkeypatch.delattr(handlers.tasks, "get_task")
    app = create_app(Settings(database_url=f"sqlite:///{tmp_path}/x.db", auth_secret=SECRET))
    with pytest.raises(ResolverError, match="get_task"), TestClient(app):
        pass


def test_app_starts_and_resolves_every_operation(client: TestClient) -> None:
    response = client.get("/api/openapi.json")
    operations = [
        operation["operationId"]
        for item in response.json()["paths"].values()
        for key, operation in item.items()
        if key != "parameters"
    ]
    assert len(operations) == len(set(operations)) == 40
