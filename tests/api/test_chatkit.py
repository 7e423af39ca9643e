"""POST /api/chatkit through openai-chatkit's own request types, on an app whose agent talks to
the scripted fake model (tests/fake_openai.py): threads are the user's conversations, answered
by the agent of POST /chat, within its limits."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest
from chatkit.types import (
    AttachmentDeleteParams,
    AttachmentsDeleteReq,
    InferenceOptions,
    ItemsListParams,
    ItemsListReq,
    ThreadAddUserMessageParams,
    ThreadCreateParams,
    ThreadDeleteParams,
    ThreadGetByIdParams,
    ThreadListParams,
    ThreadRetryAfterItemParams,
    ThreadsAddUserMessageReq,
    ThreadsCreateReq,
    ThreadsDeleteReq,
    ThreadsGetByIdReq,
    ThreadsListReq,
    ThreadsRetryAfterItemReq,
    ThreadsUpdateReq,
    ThreadUpdateParams,
    UserMessageInput,
    UserMessageTextContent,
)
from pydantic import BaseModel
from starlette.testclient import TestClient

from tests.conftest import AUDIENCE, ISSUER, SECRET, Client, bearer, make_token
from tests.databases import fresh_postgres
from tests.fake_openai import API_KEY, FakeOpenAI, serve_fake_openai
from todo_api.chat_settings import ChatSettings

PROBLEM = "application/problem+json"


@pytest.fixture
def serve(serve: Client) -> Iterator[Client]:
    """conftest's `serve`, on a PostgreSQL database of the test's own when the suite runs on
    PostgreSQL (TEST_DATABASE_URL): ChatKit's JSON items and threads are stored there too."""
    server = os.environ.get("TEST_DATABASE_URL")
    if not server:
        yield serve
        return
    with fresh_postgres(server) as database:
        yield lambda **settings: serve(**({"database_url": database} | settings))


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with serve_fake_openai() as served:
        yield served


def start(serve: Client, fake: FakeOpenAI | None, **chat: Any) -> TestClient:
    model = {} if fake is None else {"api_key": API_KEY, "base_url": fake.base_url}
    return serve(
        auth_secret=SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        validate_responses=True,
        chat=ChatSettings(**model, model="fake-model", **chat),
    )


@pytest.fixture
def client(serve: Client, fake: FakeOpenAI) -> TestClient:
    return start(serve, fake)


def said(text: str) -> UserMessageInput:
    return UserMessageInput(
        content=[UserMessageTextContent(text=text)],
        attachments=[],
        inference_options=InferenceOptions(),
    )


def post(client: TestClient, request: BaseModel | dict[str, Any], user: str = "alice") -> Any:
    body = request.model_dump_json() if isinstance(request, BaseModel) else json.dumps(request)
    headers = bearer(make_token(user)) | {"Content-Type": "application/json"}
    return client.post("/api/chatkit", content=body, headers=headers)


def events(response: Any) -> list[dict[str, Any]]:
    """The Server-Sent Events' data, each a ChatKit event."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    return [
        json.loads(line.removeprefix("data: "))
        for line in response.text.splitlines()
        if line.startswith("data: ")
    ]


def done(streamed: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [
        event["item"]
        for event in streamed
        if event["type"] == "thread.item.done" and event["item"]["type"] == kind
    ]


def text(item: dict[str, Any]) -> str:
    return "".join(part["text"] for part in item["content"])


def create(client: TestClient, message: str, user: str = "alice") -> tuple[str, list[Any]]:
    streamed = events(
        post(client, ThreadsCreateReq(params=ThreadCreateParams(input=said(message))), user)
    )
    (created,) = [event for event in streamed if event["type"] == "thread.created"]
    return created["thread"]["id"], streamed


def add(client: TestClient, thread_id: str, message: str, user: str = "alice") -> list[Any]:
    params = ThreadAddUserMessageParams(thread_id=thread_id, input=said(message))
    return events(post(client, ThreadsAddUserMessageReq(params=params), user))


def test_a_new_thread_streams_the_answer_and_the_agent_adds_the_task(
    client: TestClient,
) -> None:
    thread_id, streamed = create(client, "add buy milk")
    (user,) = done(streamed, "user_message")
    (answer,) = done(streamed, "assistant_message")
    assert text(user) == "add buy milk"
    assert text(answer).startswith('Added "buy milk".')
    # The tool call showed as progress, and the thread took its first message as its title.
    assert any(event["type"] == "progress_update" for event in streamed)
    assert [event["thread"]["title"] for event in streamed if event["type"] == "thread.updated"]
    assert thread_id.count("-") == 4  # a UUID, as conversations' ids are
    tasks = client.get("/api/tasks", headers=bearer(make_token("alice"))).json()
    assert [task["title"] for task in tasks] == ["buy milk"]


def test_the_next_message_sends_the_thread_so_far(client: TestClient, fake: FakeOpenAI) -> None:
    thread_id, _ = create(client, "add buy milk")
    before = len(fake.requests)
    streamed = add(client, thread_id, "recall")
    (answer,) = done(streamed, "assistant_message")
    assert text(answer) == "You said: add buy milk"
    sent = fake.requests[before]["messages"]
    assert any("add buy milk" in json.dumps(message) for message in sent)
    # Each answer is an item of its own, not the model's placeholder id twice.
    items = post(client, ItemsListReq(params=ItemsListParams(thread_id=thread_id, order="asc")))
    ids = [item["id"] for item in items.json()["data"]]
    assert len(ids) == 4 == len(set(ids))
    assert "__fake_id__" not in ids


def test_threads_list_and_load_in_pages(client: TestClient) -> None:
    first, _ = create(client, "hello")
    second, _ = create(client, "add buy milk")
    listed = post(client, ThreadsListReq(params=ThreadListParams(limit=1)))
    page = listed.json()
    assert listed.headers["content-type"].startswith("application/json")
    assert [thread["id"] for thread in page["data"]] == [second]
    assert page["has_more"] is True
    after = ThreadListParams(limit=1, after=page["after"])
    assert [t["id"] for t in post(client, ThreadsListReq(params=after)).json()["data"]] == [first]
    oldest = post(client, ThreadsListReq(params=ThreadListParams(order="asc"))).json()
    assert [thread["id"] for thread in oldest["data"]] == [first, second]

    thread = post(client, ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=second))).json()
    assert thread["title"] == "add buy milk"
    kinds = [item["type"] for item in thread["items"]["data"]]
    assert kinds == ["user_message", "assistant_message"]
    newest = ItemsListParams(thread_id=second, limit=1)
    page = post(client, ItemsListReq(params=newest)).json()
    assert [item["type"] for item in page["data"]] == ["assistant_message"]
    older = ItemsListParams(thread_id=second, limit=1, after=page["after"])
    page = post(client, ItemsListReq(params=older)).json()
    assert [text(item) for item in page["data"]] == ["add buy milk"]
    assert page["has_more"] is False


def test_a_thread_is_a_conversation_and_its_items_are_messages(client: TestClient) -> None:
    thread_id, _ = create(client, "add buy milk")
    alice = bearer(make_token("alice"))
    conversations = client.get("/api/conversations", headers=alice).json()
    assert [(c["id"], c["title"]) for c in conversations] == [(thread_id, "add buy milk")]
    messages = client.get(f"/api/conversations/{thread_id}/messages", headers=alice).json()
    assert [message["role"] for message in messages] == ["user", "assistant"]
    assert messages[0]["content"] == "add buy milk"
    assert messages[1]["content"].startswith('Added "buy milk".')
    assert [call["name"] for call in messages[1]["tool_calls"]] == ["add_task"]
    # POST /chat goes on with the same conversation, and ChatKit reads its turn back.
    turn = client.post(
        "/api/chat", json={"conversation_id": thread_id, "message": "recall"}, headers=alice
    )
    assert turn.json()["response"] == "You said: add buy milk"
    items = post(client, ItemsListReq(params=ItemsListParams(thread_id=thread_id, order="asc")))
    assert [text(item) for item in items.json()["data"]][2:] == [
        "recall",
        "You said: add buy milk",
    ]


def test_rename_and_delete_a_thread(client: TestClient) -> None:
    thread_id, _ = create(client, "hello")
    renamed = post(
        client, ThreadsUpdateReq(params=ThreadUpdateParams(thread_id=thread_id, title="Milk"))
    )
    assert renamed.json()["title"] == "Milk"
    assert (
        post(client, ThreadsDeleteReq(params=ThreadDeleteParams(thread_id=thread_id))).json() == {}
    )
    gone = post(client, ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread_id)))
    assert gone.status_code == 404
    assert client.get("/api/conversations", headers=bearer(make_token("alice"))).json() == []


def test_another_users_thread_is_not_found(client: TestClient, fake: FakeOpenAI) -> None:
    thread_id, _ = create(client, "add secret plan")
    before = len(fake.requests)
    requests: list[BaseModel] = [
        ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread_id)),
        ItemsListReq(params=ItemsListParams(thread_id=thread_id)),
        ThreadsAddUserMessageReq(
            params=ThreadAddUserMessageParams(thread_id=thread_id, input=said("recall"))
        ),
        ThreadsUpdateReq(params=ThreadUpdateParams(thread_id=thread_id, title="mine")),
        ThreadsDeleteReq(params=ThreadDeleteParams(thread_id=thread_id)),
    ]
    for request in requests:
        response = post(client, request, user="bob")
        assert response.status_code == 404, response.text
        assert response.headers["content-type"] == PROBLEM
        assert "secret" not in response.text
    assert len(fake.requests) == before  # the model was never asked
    assert post(client, ThreadsListReq(params=ThreadListParams()), user="bob").json()["data"] == []
    mine = post(client, ThreadsGetByIdReq(params=ThreadGetByIdParams(thread_id=thread_id)))
    assert mine.json()["title"] == "add secret plan"


@pytest.mark.parametrize(
    ("body", "pointer"),
    [
        ({"type": "threads.create", "params": {}}, "#/params/input"),
        ({"type": "threads.nothing"}, "#/type"),
        ({"type": "threads.list", "params": {"limit": "many"}}, "#/params/limit"),
        (
            {
                "type": "threads.create",
                "params": {
                    "input": {
                        "content": [{"type": "input_text"}],
                        "attachments": [],
                        "inference_options": {},
                    }
                },
            },
            "#/params/input/content/0/text",
        ),
        (
            ThreadsCreateReq(
                params=ThreadCreateParams(
                    input=said("hi").model_copy(update={"attachments": ["atc_1"]})
                )
            ).model_dump(mode="json"),
            "#/params/input/attachments",
        ),
        (
            AttachmentsDeleteReq(params=AttachmentDeleteParams(attachment_id="atc_1")).model_dump(
                mode="json"
            ),
            "#/type",
        ),
    ],
)
def test_a_body_chatkit_refuses_is_a_422_problem(
    client: TestClient, body: dict[str, Any], pointer: str
) -> None:
    response = post(client, body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    assert [error["pointer"] for error in response.json()["errors"]] == [pointer]


def test_without_a_model_chatkit_answers_503(serve: Client) -> None:
    client = start(serve, None)
    for request in (
        ThreadsListReq(params=ThreadListParams()),
        ThreadsCreateReq(params=ThreadCreateParams(input=said("hello"))),
    ):
        response = post(client, request)
        assert response.status_code == 503, response.text
        assert response.headers["content-type"] == PROBLEM
        assert "Retry-After" in response.headers


def test_a_failing_model_ends_the_stream_with_its_error_and_keeps_the_message(
    client: TestClient,
) -> None:
    thread_id, streamed = create(client, "fail")
    (error,) = [event for event in streamed if event["type"] == "error"]
    assert error["message"] == "The model is unavailable (it answered 500)."
    assert error["allow_retry"] is True
    items = post(client, ItemsListReq(params=ItemsListParams(thread_id=thread_id))).json()
    assert [text(item) for item in items["data"]] == ["fail"]
    # The thread goes on once the model is back.
    (answer,) = done(add(client, thread_id, "recall"), "assistant_message")
    assert text(answer) == "You said: fail"


def test_the_tool_call_cap_stops_the_agent_as_post_chat_does(
    serve: Client, fake: FakeOpenAI
) -> None:
    client = start(serve, fake, max_tool_calls=2)
    _, streamed = create(client, "loop")
    (answer,) = done(streamed, "assistant_message")
    assert "at most 2 tool calls" in text(answer)


def test_chatkit_messages_count_against_the_chat_rate_limit(
    serve: Client, fake: FakeOpenAI
) -> None:
    client = start(serve, fake, rate_limit_per_user=1)
    thread_id, _ = create(client, "hello")
    refused = post(
        client,
        ThreadsAddUserMessageReq(
            params=ThreadAddUserMessageParams(thread_id=thread_id, input=said("again"))
        ),
    )
    assert refused.status_code == 429
    assert refused.headers["content-type"] == PROBLEM
    # Reading costs the model nothing, and is not counted.
    listed = post(client, ItemsListReq(params=ItemsListParams(thread_id=thread_id)))
    assert listed.status_code == 200


def test_a_model_slower_than_chat_timeout_ends_the_stream_with_its_error(
    serve: Client, fake: FakeOpenAI
) -> None:
    client = start(serve, fake, timeout=1)
    thread_id, streamed = create(client, "slow")
    (error,) = [event for event in streamed if event["type"] == "error"]
    assert error["message"] == "The model did not answer within 1 seconds."
    assert not done(streamed, "assistant_message")
    items = post(client, ItemsListReq(params=ItemsListParams(thread_id=thread_id))).json()
    assert [text(item) for item in items["data"]] == ["slow"]


def test_chat_timeout_bounds_the_whole_turn_not_each_model_call(
    serve: Client, fake: FakeOpenAI
) -> None:
    # Each model call answers within the client's own timeout; the turn's many do not.
    client = start(serve, fake, timeout=1, max_tool_calls=8)
    fake.delay = 0.3
    try:
        _thread_id, streamed = create(client, "loop")
    finally:
        fake.delay = 0
    (error,) = [event for event in streamed if event["type"] == "error"]
    assert error["message"] == "The model did not answer within 1 seconds."


def test_a_retry_answers_the_message_again(client: TestClient, fake: FakeOpenAI) -> None:
    thread_id, streamed = create(client, "hello")
    (user,) = done(streamed, "user_message")
    (first,) = done(streamed, "assistant_message")
    not_a_question = ThreadsRetryAfterItemReq(
        params=ThreadRetryAfterItemParams(thread_id=thread_id, item_id=first["id"])
    )
    refused = post(client, not_a_question)
    assert refused.status_code == 422
    assert refused.json()["errors"][0]["pointer"] == "#/params/item_id"
    before = len(fake.requests)
    retry = ThreadsRetryAfterItemReq(
        params=ThreadRetryAfterItemParams(thread_id=thread_id, item_id=user["id"])
    )
    (again,) = done(events(post(client, retry)), "assistant_message")
    assert text(again) == "You said: hello"
    assert len(fake.requests) == before + 1
    items = post(client, ItemsListReq(params=ItemsListParams(thread_id=thread_id, order="asc")))
    assert [item["id"] for item in items.json()["data"]] == [user["id"], again["id"]]


@pytest.mark.parametrize(
    ("message", "detail"),
    [("x" * 4001, "longer than 4000"), ("   ", "blank"), ("a\u0007b", "control character")],
)
def test_a_message_out_of_post_chats_bounds_is_422(
    client: TestClient, message: str, detail: str
) -> None:
    answer = post(client, ThreadsCreateReq(params=ThreadCreateParams(input=said(message))))
    assert answer.status_code == 422, answer.text
    [error] = answer.json()["errors"]
    assert error["pointer"] == "#/params/input/content"
    assert detail in error["detail"]
    assert client.get("/api/conversations", headers=bearer(make_token("alice"))).json() == []


def test_a_nul_anywhere_is_422_before_the_database_sees_it(client: TestClient) -> None:
    params = ThreadGetByIdParams(thread_id="a\u0000b")
    answer = post(client, ThreadsGetByIdReq(params=params))
    assert answer.status_code == 422, answer.text
    assert answer.json()["errors"][0]["pointer"] == "#/params/thread_id"


def test_a_new_thread_past_the_message_quota_leaves_no_conversation(
    serve: Client, fake: FakeOpenAI
) -> None:
    client = start(serve, fake, message_quota=2)
    create(client, "hello")  # its message and the reply: the quota, full
    answer = post(client, ThreadsCreateReq(params=ThreadCreateParams(input=said("again"))))
    assert answer.status_code == 409, answer.text
    conversations = client.get("/api/conversations", headers=bearer(make_token("alice")))
    assert len(conversations.json()) == 1


def test_a_deleted_thread_is_not_brought_back_by_an_update(client: TestClient) -> None:
    thread_id, _ = create(client, "hello")
    headers = bearer(make_token("alice"))
    assert client.delete(f"/api/conversations/{thread_id}", headers=headers).status_code == 204
    params = ThreadUpdateParams(thread_id=thread_id, title="back from the dead")
    answer = post(client, ThreadsUpdateReq(params=params))
    assert answer.status_code == 404, answer.text
    assert client.get("/api/conversations", headers=headers).json() == []
