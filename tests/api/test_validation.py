"""Every validation rule of the contract answers 422 (or 400/415) naming the field."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from todo_api.web.problems import MAX_ERRORS

INVALID_CREATE_BODIES: dict[str, tuple[dict[str, Any], str]] = {
    "missing title": ({"description": "x"}, "#/title"),
    "empty title": ({"title": ""}, "#/title"),
    "blank title": ({"title": "   "}, "#/title"),
    "title too long": ({"title": "x" * 201}, "#/title"),
    "title with NUL": ({"title": "a\u0000b"}, "#/title"),
    "title with newline": ({"title": "a\nb"}, "#/title"),
    "title with final newline": ({"title": "ab\n"}, "#/title"),
    "title with C1 control": ({"title": "a\u0085b"}, "#/title"),
    "title not a string": ({"title": 5}, "#/title"),
    "description too long": ({"title": "t", "description": "d" * 1001}, "#/description"),
    "description with NUL": ({"title": "t", "description": "a\u0000"}, "#/description"),
    "description with escape": ({"title": "t", "description": "a\u001bb"}, "#/description"),
    "completed not boolean": ({"title": "t", "completed": "yes"}, "#/completed"),
    "unknown priority": ({"title": "t", "priority": "urgent"}, "#/priority"),
    "tags not a list": ({"title": "t", "tags": "a,b"}, "#/tags"),
    "eleven tags": ({"title": "t", "tags": [f"t{i}" for i in range(11)]}, "#/tags"),
    "duplicate tags": ({"title": "t", "tags": ["a", "a"]}, "#/tags"),
    "empty tag": ({"title": "t", "tags": [""]}, "#/tags/0"),
    "blank tag": ({"title": "t", "tags": ["ok", " "]}, "#/tags/1"),
    "tag too long": ({"title": "t", "tags": ["x" * 31]}, "#/tags/0"),
    "tag with NUL": ({"title": "t", "tags": ["a\u0000"]}, "#/tags/0"),
    "tag with final newline": ({"title": "t", "tags": ["work\n"]}, "#/tags/0"),
    "due date not a date": ({"title": "t", "due_date": "tomorrow"}, "#/due_date"),
    "due date without offset": ({"title": "t", "due_date": "2030-01-01T10:00:00"}, "#/due_date"),
    "due date leap second": ({"title": "t", "due_date": "2030-06-30T23:59:60Z"}, "#/due_date"),
    "due date before year 1 in UTC": (
        {"title": "t", "due_date": "0001-01-01T00:00:00+01:00"},
        "#/due_date",
    ),
    "due date after 9999 in UTC": (
        {"title": "t", "due_date": "9999-12-31T23:59:59-01:00"},
        "#/due_date",
    ),
    "unknown field": ({"title": "t", "titel": "typo"}, "#/titel"),
}


@pytest.mark.parametrize(
    ("body", "pointer"), INVALID_CREATE_BODIES.values(), ids=INVALID_CREATE_BODIES
)
def test_invalid_create_is_422_naming_the_field(
    client: TestClient, alice: dict[str, str], body: dict[str, Any], pointer: str
) -> None:
    response = client.post("/api/tasks", json=body, headers=alice)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == 422
    assert problem["title"] == "Unprocessable Content"
    assert pointer in [error.get("pointer") for error in problem["errors"]]
    assert client.get("/api/tasks", headers=alice).json() == []


@pytest.mark.parametrize(
    ("body", "pointer"),
    [(b, p) for name, (b, p) in INVALID_CREATE_BODIES.items() if name != "missing title"],
    ids=[name for name in INVALID_CREATE_BODIES if name != "missing title"],
)
def test_invalid_update_is_422_and_changes_nothing(
    client: TestClient,
    alice: dict[str, str],
    create: Callable[..., dict[str, Any]],
    body: dict[str, Any],
    pointer: str,
) -> None:
    task = create()
    response = client.patch(f"/api/tasks/{task['id']}", json=body, headers=alice)
    assert response.status_code == 422, response.text
    assert pointer in [error.get("pointer") for error in response.json()["errors"]]
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).json() == task


def test_every_offending_field_is_named(client: TestClient, alice: dict[str, str]) -> None:
    body = {"title": "", "priority": "urgent", "tags": "x", "extra": 1}
    problem = client.post("/api/tasks", json=body, headers=alice).json()
    pointers = {error["pointer"] for error in problem["errors"]}
    assert pointers == {"#/title", "#/priority", "#/tags", "#/extra"}


def test_limits_are_inclusive(client: TestClient, alice: dict[str, str]) -> None:
    body = {
        "title": "x" * 200,
        "description": "d" * 1000,
        "tags": [f"{i:02d}" + "t" * 28 for i in range(10)],
    }
    response = client.post("/api/tasks", json=body, headers=alice)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == "x" * 200
    assert response.json()["tags"] == body["tags"]


def test_unicode_text_round_trips(client: TestClient, alice: dict[str, str]) -> None:
    body = {"title": "Café ☕ 𝄞 日本", "description": "ünïcödé\r\nline", "tags": ["ß", "😀"]}
    task = client.post("/api/tasks", json=body, headers=alice).json()
    assert {k: task[k] for k in body} == body


@pytest.mark.parametrize(
    ("content", "status"),
    [
        (b'{"title": "x"', 400),
        (b"not json", 400),
        (b'{"title": "\xff\xfe"}', 400),
        (b'{"title": NaN}', 400),
        (b"   ", 400),
        (b"[" * 30_000 + b"]" * 30_000, 400),
        (b"[]", 422),
        (b'"a string"', 422),
        (b"null", 422),
    ],
)
def test_malformed_body(
    client: TestClient, alice: dict[str, str], content: bytes, status: int
) -> None:
    headers = {**alice, "Content-Type": "application/json"}
    response = client.post("/api/tasks", content=content, headers=headers)
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["status"] == status


def test_missing_body_is_400(client: TestClient, alice: dict[str, str]) -> None:
    response = client.post("/api/tasks", headers={**alice, "Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/api/tasks"), ("PATCH", "/api/tasks/{id}"), ("POST", "/api/tasks/{id}/complete")],
)
def test_body_without_content_type_is_415(
    client: TestClient, alice: dict[str, str], create: Callable, method: str, path: str
) -> None:
    task = create()
    response = client.request(
        method, path.format(id=task["id"]), content=b'{"title": "x"}', headers=alice
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).json() == task


def test_errors_are_listed_once_and_capped(client: TestClient, alice: dict[str, str]) -> None:
    headers = {**alice, "Content-Type": "application/json"}
    once = client.post("/api/tasks", content=b"[]", headers=headers).json()
    assert len(once["errors"]) == len({(e["pointer"], e["detail"]) for e in once["errors"]})
    many = {f"unknown{i}": i for i in range(2000)}
    response = client.post("/api/tasks", json={"title": "t", **many}, headers=alice)
    assert response.status_code == 422
    problem = response.json()
    assert 1 <= len(problem["errors"]) <= MAX_ERRORS
    assert len(response.content) < 10_000


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_body_that_is_not_json_is_415(
    client: TestClient, alice: dict[str, str], content_type: str
) -> None:
    response = client.post(
        "/api/tasks", content=b"title=x", headers={**alice, "Content-Type": content_type}
    )
    assert response.status_code == 415
    assert response.headers["content-type"] == "application/problem+json"


INVALID_QUERIES = {
    "limit zero": ("limit=0", "limit"),
    "limit too big": ("limit=501", "limit"),
    "limit not a number": ("limit=ten", "limit"),
    "unknown status": ("status=done", "status"),
    "unknown priority": ("priority=urgent", "priority"),
    "unknown sort": ("sort=size", "sort"),
    "unknown order": ("order=up", "order"),
    "bad due_before": ("due_before=yesterday", "due_before"),
    "due_after leap second": ("due_after=2030-06-30T23:59:60Z", "due_after"),
    "empty q": ("q=", "q"),
    "q with NUL": ("q=a%00b", "q"),
    "q with final newline": ("q=ab%0A", "q"),
    "tag too long": ("tag=" + "x" * 31, "tag"),
    "cursor with bad characters": ("cursor=a.b", "cursor"),
}


@pytest.mark.parametrize(("query", "parameter"), INVALID_QUERIES.values(), ids=INVALID_QUERIES)
def test_invalid_list_query_is_422_naming_the_parameter(
    client: TestClient, alice: dict[str, str], query: str, parameter: str
) -> None:
    response = client.get(f"/api/tasks?{query}", headers=alice)
    assert response.status_code == 422, response.text
    assert parameter in [error.get("parameter") for error in response.json()["errors"]]


def test_lone_surrogate_is_422(client: TestClient, alice: dict[str, str]) -> None:
    # Valid JSON, but no UTF-8 encoding exists for it, so no database could store it.
    headers = {**alice, "Content-Type": "application/json"}
    response = client.post("/api/tasks", content=b'{"title": "a\\ud800b"}', headers=headers)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "#/title"


@pytest.mark.parametrize("task_id", ["abc", "1.5", "1e3"])
def test_non_numeric_task_id_matches_no_route(
    client: TestClient, alice: dict[str, str], task_id: str
) -> None:
    response = client.get(f"/api/tasks/{task_id}", headers=alice)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("task_id", ["0", "-1", "9223372036854775808"])
def test_out_of_range_task_id_is_422(
    client: TestClient, alice: dict[str, str], task_id: str
) -> None:
    response = client.get(f"/api/tasks/{task_id}", headers=alice)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["parameter"] == "task_id"


def test_largest_task_id_is_a_plain_404(client: TestClient, alice: dict[str, str]) -> None:
    response = client.get("/api/tasks/9223372036854775807", headers=alice)
    assert response.status_code == 404


def test_each_parameter_is_checked_once_per_request(
    client: TestClient,
    alice: dict[str, str],
    create: Callable[..., dict[str, Any]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connexion lists a path's parameters once more for each of its middlewares."""
    from todo_api.web import validators

    task = create(title="t")
    checked: list[str] = []
    check = validators.parameter_detail

    def counting(value: Any, param: dict[str, Any], location: str) -> str | None:
        checked.append(param["name"])
        return check(value, param, location)

    monkeypatch.setattr(validators, "parameter_detail", counting)
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).status_code == 200
    assert sorted(checked) == ["If-None-Match", "task_id"]


def test_a_value_over_its_length_bound_is_named_by_the_bound_not_echoed(
    client: TestClient, alice: dict[str, str]
) -> None:
    response = client.post("/api/tasks", json={"title": "x" * 5000}, headers=alice)
    [error] = response.json()["errors"]
    assert error == {"pointer": "#/title", "detail": "is longer than 200 characters"}
