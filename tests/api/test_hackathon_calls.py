"""What docs/coming-from-a-hackathon-backend.md says of each call a hackathon frontend makes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import AUDIENCE, ISSUER, SECRET, Client
from tests.fake_openai import API_KEY, MODEL, serve_fake_openai
from todo_api.chat_settings import ChatSettings

Create = Callable[..., dict[str, Any]]


def test_the_calls_that_work_unchanged(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    # Create with title and description, by user id in the path.
    made = client.post("/api/alice/tasks", json={"title": "a", "description": "d"}, headers=alice)
    assert made.status_code == 201
    task_id = made.json()["id"]
    # A whole task sent back on PUT, completed as a field.
    task = made.json() | {"completed": True}
    assert client.put(f"/api/alice/tasks/{task_id}", json=task, headers=alice).json()["completed"]
    # A toggle with no body.
    toggled = client.patch(f"/api/alice/tasks/{task_id}/complete", headers=alice)
    assert toggled.json()["completed"] is False
    # Other backends' query parameters and cache-busters are ignored: 200, not 422.
    for query in ("sort_by=created", "offset=20", "_=1712345678", "page=2&per_page=10"):
        assert client.get(f"/api/tasks?{query}", headers=alice).status_code == 200


def test_the_list_is_a_plain_array_not_an_envelope(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    create()
    body = client.get("/api/tasks", headers=alice).json()
    assert isinstance(body, list)


def test_offset_is_ignored_so_paging_goes_by_link(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    for i in range(3):
        create(title=f"t{i}")
    first = client.get("/api/tasks?limit=2", headers=alice)
    with_offset = client.get("/api/tasks?limit=2&offset=2", headers=alice)
    assert with_offset.json() == first.json()
    assert "cursor=" in first.headers["Link"]


@pytest.mark.parametrize("method", ["POST", "PATCH"])
def test_a_toggle_path_is_not_found(
    client: TestClient, alice: dict[str, str], create: Create, method: str
) -> None:
    url = f"/api/tasks/{create()['id']}/toggle"
    assert client.request(method, url, headers=alice).status_code == 404


def test_a_versioned_prefix_reads_as_another_users_path(
    client: TestClient, alice: dict[str, str]
) -> None:
    """`/api/v1/tasks` is `/api/{user_id}/tasks` with the user id `v1`: not alice's."""
    assert client.get("/api/v1/tasks", headers=alice).status_code == 403


@pytest.mark.parametrize(
    ("query", "body", "named"),
    [
        ("status=done", None, "status"),
        ("priority=High", None, "priority"),
        (None, {"title": "t", "priority": "High"}, "#/priority"),
    ],
)
def test_values_of_other_backends_are_422_naming_the_field(
    client: TestClient,
    alice: dict[str, str],
    query: str | None,
    body: dict[str, Any] | None,
    named: str,
) -> None:
    if body is None:
        response = client.get(f"/api/tasks?{query}", headers=alice)
    else:
        response = client.post("/api/tasks", json=body, headers=alice)
    assert response.status_code == 422
    error = response.json()["errors"][0]
    assert named in (error.get("parameter"), error.get("pointer"))


def test_phase_threes_chat_call_answers_its_shape_with_a_string_conversation_id(
    serve: Client, alice: dict[str, str]
) -> None:
    with serve_fake_openai() as fake:
        chat = ChatSettings(api_key=API_KEY, base_url=fake.base_url, model=MODEL)
        client = serve(auth_secret=SECRET, jwt_issuer=ISSUER, jwt_audience=AUDIENCE, chat=chat)
        first = client.post("/api/alice/chat", json={"message": "add Buy milk"}, headers=alice)
        assert first.status_code == 200
        answer = first.json()
        assert set(answer) == {"conversation_id", "response", "tool_calls"}
        assert isinstance(answer["conversation_id"], str)
        assert [call["name"] for call in answer["tool_calls"]] == ["add_task"]
        conversation = answer["conversation_id"]
        again = {"conversation_id": conversation, "message": "list"}
        second = client.post("/api/alice/chat", json=again, headers=alice)
        assert second.json()["conversation_id"] == conversation
        # Phase III's integer ids are not this API's.
        numbered = {"conversation_id": 3, "message": "list"}
        refused = client.post("/api/alice/chat", json=numbered, headers=alice)
        assert refused.status_code == 422
        assert [error["pointer"] for error in refused.json()["errors"]] == ["#/conversation_id"]


# What replayed frontends tripped on (the page's "What replayed frontends tripped on").


@pytest.mark.parametrize("envelope", ["data", "task"])
def test_a_task_is_answered_bare_and_an_enveloped_one_is_422(
    client: TestClient, alice: dict[str, str], envelope: str
) -> None:
    made = client.post("/api/tasks", json={"title": "Buy milk"}, headers=alice)
    assert made.status_code == 201
    assert made.json()["title"] == "Buy milk"
    assert not {"data", "task", "new_task"} & set(made.json())
    task_id = made.json()["id"]
    for answer in (
        client.get(f"/api/tasks/{task_id}", headers=alice),
        client.patch(f"/api/tasks/{task_id}", json={"title": "Oat milk"}, headers=alice),
        client.patch(f"/api/tasks/{task_id}/complete", json={"completed": True}, headers=alice),
    ):
        assert answer.status_code == 200
        assert answer.json()["id"] == task_id
    wrapped = client.post("/api/tasks", json={envelope: {"title": "Buy milk"}}, headers=alice)
    assert wrapped.status_code == 422
    pointers = [error.get("pointer") for error in wrapped.json()["errors"]]
    assert pointers == [f"#/{envelope}", "#/title"]
    assert client.get("/api/tasks", headers=alice).headers["X-Total-Count"] == "1"


def test_a_delete_answers_204_with_no_body_to_parse(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    deleted = client.delete(f"/api/tasks/{create()['id']}", headers=alice)
    assert deleted.status_code == 204
    assert deleted.content == b""
    assert "content-type" not in deleted.headers


def test_an_unknown_field_refuses_the_whole_write_naming_it(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    made = client.post(
        "/api/tasks", json={"title": "Stand-up", "is_recurring": True}, headers=alice
    )
    assert made.status_code == 422
    assert made.json()["detail"] == "#/is_recurring: unknown field"
    assert made.json()["errors"] == [{"pointer": "#/is_recurring", "detail": "unknown field"}]
    assert client.get("/api/tasks", headers=alice).json() == []
    task = create(title="Stand-up")
    sent_back = task | {"title": "Daily stand-up", "is_recurring": False}
    for method in ("PUT", "PATCH"):
        refused = client.request(method, f"/api/tasks/{task['id']}", json=sent_back, headers=alice)
        assert refused.status_code == 422
        assert [e["pointer"] for e in refused.json()["errors"]] == ["#/is_recurring"]
    assert client.get(f"/api/tasks/{task['id']}", headers=alice).json()["title"] == "Stand-up"


@pytest.mark.parametrize("due", ["2026-12-24", "2026-12-24T17:00:00"])
def test_a_due_date_without_a_time_or_an_offset_is_422(
    client: TestClient, alice: dict[str, str], create: Create, due: str
) -> None:
    made = client.post("/api/tasks", json={"title": "t", "due_date": due}, headers=alice)
    assert made.status_code == 422
    assert made.json()["errors"] == [
        {"pointer": "#/due_date", "detail": f"'{due}' is not a 'date-time'"}
    ]
    task_id = create()["id"]
    updated = client.patch(f"/api/tasks/{task_id}", json={"due_date": due}, headers=alice)
    assert updated.status_code == 422


def test_a_due_date_with_an_offset_is_answered_in_utc(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task = create(due_date="2026-12-24T17:00:00+02:00")
    assert task["due_date"] == "2026-12-24T15:00:00.000000Z"


def test_misnamed_filters_are_ignored_and_answer_the_whole_list(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    create(title="Buy milk")
    done = create(title="Call the plumber")
    client.patch(f"/api/tasks/{done['id']}/complete", json={"completed": True}, headers=alice)

    def titles(query: str) -> tuple[str, list[str]]:
        answer = client.get(f"/api/tasks?{query}", headers=alice)
        assert answer.status_code == 200
        return answer.headers["X-Total-Count"], sorted(task["title"] for task in answer.json())

    everything = ("2", ["Buy milk", "Call the plumber"])
    for misnamed in ("status_filter=pending", "completed=true", "completed=false", "search=milk"):
        assert titles(misnamed) == everything, misnamed
    assert titles("status=pending") == ("1", ["Buy milk"])
    assert titles("status=completed") == ("1", ["Call the plumber"])
    assert titles("q=MILK") == ("1", ["Buy milk"])


def test_a_base_url_without_api_is_404_and_api_twice_reads_as_a_user_id(
    client: TestClient, alice: dict[str, str], create: Create
) -> None:
    task_id = create()["id"]
    for path in ("/tasks", f"/tasks/{task_id}", "/health"):
        assert client.get(path, headers=alice).status_code == 404, path
    assert client.post("/tasks", json={"title": "t"}, headers=alice).status_code == 404
    twice = client.get("/api/api/tasks", headers=alice)
    assert twice.status_code == 403
    assert twice.json()["detail"] == "The user id in the path is not the signed-in user."


def test_a_session_cookie_without_authorization_is_401(client: TestClient) -> None:
    """The API reads no cookie: a Better Auth session counts only as a bearer token."""
    answer = client.get(
        "/api/tasks",
        headers={
            "Origin": "http://localhost:3000",
            "Cookie": "better-auth.session_token=a-session-token.signature",
        },
    )
    assert answer.status_code == 401
    assert answer.headers["WWW-Authenticate"] == 'Bearer realm="todo-api"'
    assert answer.json()["detail"] == "No authorization token provided"
