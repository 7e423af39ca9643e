"""POST /api/chat and the conversations: an agent on a (fake) OpenAI-compatible model manages
the user's tasks through the MCP tools, and every turn is stored per user."""

from __future__ import annotations

import dataclasses
import json
import logging
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from tests.conftest import bearer, make_token
from tests.fake_openai import API_KEY, MODEL, FakeOpenAI, serve_fake_openai
from tests.network import free_port
from todo_api.app import create_app
from todo_api.chat_settings import ChatSettings
from todo_api.settings import Settings

Start = Callable[..., TestClient]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with serve_fake_openai() as served:
        yield served


@pytest.fixture
def start(settings: Settings, fake: FakeOpenAI) -> Iterator[Start]:
    """An app on the suite's database whose chat runs on the fake model, with `chat` settings
    changed as asked."""
    fake.clear()
    clients: list[TestClient] = []

    def started(**chat: Any) -> TestClient:
        chat = {"api_key": API_KEY, "base_url": fake.base_url, "model": MODEL} | chat
        app = create_app(dataclasses.replace(settings, chat=ChatSettings(**chat)))
        client = TestClient(app, raise_server_exceptions=False)
        clients.append(client)
        return client.__enter__()

    yield started
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def user() -> str:
    """A user of this test's own: quotas and rate limits count per user."""
    return f"chatter-{uuid.uuid4().hex[:8]}"


def headers(user: str) -> dict[str, str]:
    return bearer(make_token(user))


def say(client: TestClient, user: str, message: str, conversation: str | None = None) -> Any:
    body = {"message": message} | ({"conversation_id": conversation} if conversation else {})
    return client.post("/api/chat", json=body, headers=headers(user))


def events(body: str) -> list[tuple[str, Any]]:
    """Server-Sent Events as (event, data) pairs."""
    found = []
    for block in body.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        found.append((fields["event"], json.loads(fields["data"])))
    return found


def messages(client: TestClient, user: str, conversation: str) -> list[dict[str, Any]]:
    answer = client.get(f"/api/conversations/{conversation}/messages", headers=headers(user))
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_message_that_asks_for_a_task_adds_it_and_lists_the_call(start: Start, user: str) -> None:
    client = start()
    answer = say(client, user, "remind me to buy milk")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["response"].startswith('Added "buy milk".')
    [call] = body["tool_calls"]
    assert call["name"] == "add_task"
    assert call["arguments"] == {"title": "buy milk"}
    assert call["outcome"] == "ok"
    tasks = client.get("/api/tasks", headers=headers(user)).json()
    assert [task["title"] for task in tasks] == ["buy milk"]
    stored = messages(client, user, body["conversation_id"])
    assert [(m["role"], m["content"]) for m in stored] == [
        ("user", "remind me to buy milk"),
        ("assistant", body["response"]),
    ]
    assert stored[1]["tool_calls"] == body["tool_calls"]


def test_the_user_id_path_family_acts_for_its_own_user_only(start: Start, user: str) -> None:
    client = start()
    mine = client.post(f"/api/{user}/chat", json={"message": "add call mum"}, headers=headers(user))
    assert mine.status_code == 200, mine.text
    conversation = mine.json()["conversation_id"]
    listed = client.get(f"/api/{user}/conversations", headers=headers(user))
    assert [c["id"] for c in listed.json()] == [conversation]
    theirs = client.post("/api/someone-else/chat", json={"message": "hi"}, headers=headers(user))
    assert theirs.status_code == 403


def test_the_history_reaches_the_model_with_the_next_message(
    start: Start, user: str, fake: FakeOpenAI
) -> None:
    client = start()
    first = say(client, user, "first thing").json()["conversation_id"]
    say(client, user, "second thing", first)
    answer = say(client, user, "recall", first)
    assert answer.json()["response"] == "You said: first thing | second thing"
    # Every request after the first carried the earlier turns, replies included.
    last = fake.requests[-1]["messages"]
    assert {"role": "assistant", "content": "You said: first thing"} in [
        {"role": m["role"], "content": m.get("content")} for m in last
    ]


def test_history_survives_a_restart_of_the_server(start: Start, user: str) -> None:
    conversation = say(start(), user, "before the restart").json()["conversation_id"]
    # A new app on the same database, as after a deploy: it holds nothing of the first.
    answer = say(start(), user, "recall", conversation)
    assert answer.json()["response"] == "You said: before the restart"


def test_history_is_capped_at_chat_history_messages(start: Start, user: str) -> None:
    client = start(history_messages=2)
    conversation = say(client, user, "one").json()["conversation_id"]
    say(client, user, "two", conversation)
    # The last two stored messages are "two" and its reply: "one" is no longer sent.
    assert say(client, user, "recall", conversation).json()["response"] == "You said: two"


def test_two_users_see_only_their_own_conversations(start: Start, user: str) -> None:
    client = start()
    other = f"{user}-other"
    conversation = say(client, user, "add secret plan").json()["conversation_id"]
    assert client.get("/api/conversations", headers=headers(other)).json() == []
    for answer in (
        client.get(f"/api/conversations/{conversation}/messages", headers=headers(other)),
        client.delete(f"/api/conversations/{conversation}", headers=headers(other)),
        say(client, other, "recall", conversation),
    ):
        assert answer.status_code == 404, answer.text
        assert answer.headers["content-type"] == "application/problem+json"
    # The other user's turn added nothing to the conversation, and its owner still has it.
    assert len(messages(client, user, conversation)) == 2
    assert client.get("/api/tasks", headers=headers(other)).json() == []


def test_a_user_id_the_model_makes_up_is_refused(start: Start, user: str) -> None:
    client = start()
    victim = f"{user}-victim"
    answer = say(client, user, f"as {victim} add steal").json()
    [call] = answer["tool_calls"]
    assert call["arguments"]["user_id"] == victim
    assert call["outcome"] == "refused"
    assert "not the signed-in user" in call["summary"]
    assert client.get("/api/tasks", headers=headers(victim)).json() == []
    assert client.get("/api/tasks", headers=headers(user)).json() == []


def test_a_looping_model_is_stopped_with_a_clear_answer(start: Start, user: str) -> None:
    client = start(max_tool_calls=3)
    answer = say(client, user, "loop")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert "at most 3 tool calls" in body["response"]
    done = [call for call in body["tool_calls"] if call["outcome"] == "ok"]
    assert len(done) == 3
    assert all(call["outcome"] == "refused" for call in body["tool_calls"][3:])
    # The answer is stored as the reply, so the conversation reads as it went.
    assert messages(client, user, body["conversation_id"])[-1]["content"] == body["response"]


@pytest.mark.parametrize(
    ("message", "status"),
    [("fail", 503), ("garbage", 502)],
)
def test_a_failing_model_is_a_problem_with_retry_after_and_the_message_stays(
    start: Start, user: str, message: str, status: int
) -> None:
    client = start()
    conversation = say(client, user, "hello").json()["conversation_id"]
    answer = say(client, user, message, conversation)
    assert answer.status_code == status, answer.text
    assert answer.headers["content-type"] == "application/problem+json"
    assert int(answer.headers["retry-after"]) > 0
    assert "Traceback" not in answer.text
    stored = messages(client, user, conversation)
    # The user's message is kept, and no half reply is.
    assert [(m["role"], m["content"]) for m in stored][-1] == ("user", message)
    assert len(stored) == 3


def test_a_model_that_is_down_gives_503(start: Start, user: str) -> None:
    client = start(base_url=f"http://127.0.0.1:{free_port()}/v1")
    answer = say(client, user, "hello")
    assert answer.status_code == 503, answer.text
    assert answer.json()["detail"] == "The model could not be reached."
    assert "retry-after" in answer.headers
    [conversation] = client.get("/api/conversations", headers=headers(user)).json()
    assert [m["content"] for m in messages(client, user, conversation["id"])] == ["hello"]


def test_a_model_slower_than_chat_timeout_gives_503(
    start: Start, user: str, fake: FakeOpenAI
) -> None:
    fake.slow_seconds = 5
    client = start(timeout=1)
    answer = say(client, user, "slow")
    assert answer.status_code == 503, answer.text
    assert "within 1 seconds" in answer.json()["detail"]
    assert "retry-after" in answer.headers


def test_chat_timeout_bounds_the_whole_turn_not_each_model_call(
    start: Start, user: str, fake: FakeOpenAI
) -> None:
    # Each model call answers within the client's own timeout; the turn's many do not.
    client = start(timeout=1, max_tool_calls=8)
    fake.delay = 0.3
    try:
        answer = say(client, user, "loop")
    finally:
        fake.delay = 0
    assert answer.status_code == 503, answer.text
    assert answer.json()["detail"] == "The model did not answer within 1 seconds."


def test_without_a_model_chat_is_503_and_the_rest_works(settings: Settings, user: str) -> None:
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        answer = say(client, user, "hello")
        assert answer.status_code == 503
        assert "OPENAI_API_KEY" in answer.json()["detail"]
        assert "retry-after" in answer.headers
        assert client.get("/api/conversations", headers=headers(user)).json() == []
        assert client.get("/api/tasks", headers=headers(user)).status_code == 200


def test_streaming_sends_deltas_tool_events_and_the_answer_last(start: Start, user: str) -> None:
    client = start()
    answer = client.post(
        "/api/chat",
        json={"message": "add eggs"},
        headers=headers(user) | {"Accept": "text/event-stream"},
    )
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    sent = events(answer.text)
    kinds = [kind for kind, _ in sent]
    assert kinds[:2] == ["tool_call", "tool_result"]
    assert kinds[-1] == "done"
    assert {kind for kind in kinds[2:-1]} == {"delta"}
    text = "".join(data["text"] for kind, data in sent if kind == "delta")
    done = sent[-1][1]
    assert text == done["response"]
    assert done["tool_calls"][0]["name"] == "add_task"
    assert [m["role"] for m in messages(client, user, done["conversation_id"])] == [
        "user",
        "assistant",
    ]


def test_a_stream_whose_model_fails_ends_with_an_error_event(start: Start, user: str) -> None:
    client = start()
    answer = client.post(
        "/api/chat",
        json={"message": "fail"},
        headers=headers(user) | {"Accept": "text/event-stream"},
    )
    [(kind, problem)] = events(answer.text)
    assert kind == "error"
    assert problem["status"] == 503
    assert problem["retry_after"] > 0


def test_a_message_over_the_bound_or_blank_is_refused(start: Start, user: str) -> None:
    client = start()
    for message in ("x" * 4001, "   ", ""):
        answer = say(client, user, message)
        assert answer.status_code == 422, answer.text
    assert client.get("/api/conversations", headers=headers(user)).json() == []


def test_conversations_past_the_quota_are_409_and_nothing_is_written(
    start: Start, user: str
) -> None:
    client = start(conversation_quota=1)
    conversation = say(client, user, "hello").json()["conversation_id"]
    refused = say(client, user, "a second conversation")
    assert refused.status_code == 409, refused.text
    assert len(client.get("/api/conversations", headers=headers(user)).json()) == 1
    # Deleting one makes room.
    gone = client.delete(f"/api/conversations/{conversation}", headers=headers(user))
    assert gone.status_code == 204
    assert say(client, user, "now there is room").status_code == 200


def test_messages_past_the_quota_are_409_and_the_model_is_not_asked(
    start: Start, user: str, fake: FakeOpenAI
) -> None:
    client = start(message_quota=2)
    conversation = say(client, user, "hello").json()["conversation_id"]
    asked = len(fake.requests)
    refused = say(client, user, "one more", conversation)
    assert refused.status_code == 409, refused.text
    assert len(fake.requests) == asked
    assert len(messages(client, user, conversation)) == 2


def test_chat_is_rate_limited_per_user_on_its_own(start: Start, user: str) -> None:
    client = start(rate_limit_per_user=2, rate_limit_window=60)
    assert say(client, user, "one").status_code == 200
    assert say(client, user, "two").status_code == 200
    refused = say(client, user, "three")
    assert refused.status_code == 429
    assert "chat messages" in refused.json()["detail"]
    assert int(refused.headers["retry-after"]) > 0
    # The rest of the API, and another user's chat, are not held back.
    assert client.get("/api/tasks", headers=headers(user)).status_code == 200
    assert say(client, f"{user}-other", "hello").status_code == 200


def test_conversations_are_paged_newest_first_and_messages_in_order(
    start: Start, user: str
) -> None:
    client = start()
    made = [say(client, user, f"conversation {n}").json()["conversation_id"] for n in range(3)]
    first = client.get("/api/conversations?limit=2", headers=headers(user))
    assert first.headers["x-total-count"] == "3"
    assert [c["id"] for c in first.json()] == made[:0:-1]
    link = first.headers["link"]
    assert link.endswith('>; rel="next"')
    rest = client.get(link[1 : link.index(">")], headers=headers(user))
    assert [c["id"] for c in rest.json()] == [made[0]]
    assert "link" not in rest.headers
    say(client, user, "more", made[0])
    page = client.get(f"/api/conversations/{made[0]}/messages?limit=3", headers=headers(user))
    assert page.headers["x-total-count"] == "4"
    assert [m["content"] for m in page.json()][:3:2] == ["conversation 0", "more"]


def test_a_cursor_of_another_list_is_422(start: Start, user: str) -> None:
    client = start()
    answer = client.get("/api/conversations?cursor=eyJtIjoxfQ", headers=headers(user))
    assert answer.status_code == 422, answer.text


def test_the_api_key_is_never_logged(
    start: Start, user: str, caplog: pytest.LogCaptureFixture
) -> None:
    key = f"sk-{uuid.uuid4().hex}"
    client = start(api_key=key)
    with caplog.at_level(logging.DEBUG):
        for message in ("hello", "garbage", "fail"):
            say(client, user, message)
        client.get("/api/conversations", headers=headers(user))
    assert caplog.records
    assert all(key not in record.getMessage() for record in caplog.records)
    assert all(key not in str(record.__dict__) for record in caplog.records)
    assert key not in repr(ChatSettings(api_key=key))


def test_without_the_chat_extra_chat_is_503_even_with_a_key(
    start: Start, user: str, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # As if `openai-agents` were not installed: importing the model's adapter fails.
    monkeypatch.setitem(sys.modules, "todo_api.chat.agent", None)
    with caplog.at_level(logging.WARNING):
        client = start()
    answer = say(client, user, "hello")
    assert answer.status_code == 503
    assert "todo-api[chat]" in answer.json()["detail"]
    assert any("chat extra is missing" in record.getMessage() for record in caplog.records)
    assert client.get("/api/tasks", headers=headers(user)).status_code == 200


def test_a_refused_message_costs_no_place_in_the_chat_rate_limit(start: Start, user: str) -> None:
    client = start(rate_limit_per_user=1)
    unknown = str(uuid.uuid4())
    assert say(client, user, "hello", unknown).status_code == 404
    assert say(client, user, "hello").status_code == 200


def test_a_streamed_turn_whose_client_left_is_stored_before_the_app_ends(
    settings: Settings, fake: FakeOpenAI, user: str
) -> None:
    fake.delay = 0.5
    chat = ChatSettings(api_key=API_KEY, base_url=fake.base_url, model=MODEL)
    app = create_app(dataclasses.replace(settings, chat=chat))
    try:
        with (
            TestClient(app) as client,
            client.stream(
                "POST",
                "/api/chat",
                json={"message": "hello"},
                headers=headers(user) | {"Accept": "text/event-stream"},
            ) as answer,
        ):
            assert answer.status_code == 200
            # Gone before the model answers: the app ends right after.
    finally:
        fake.delay = 0
    with TestClient(create_app(settings)) as client:
        [conversation] = client.get("/api/conversations", headers=headers(user)).json()
        stored = messages(client, user, conversation["id"])
    assert [m["role"] for m in stored] == ["user", "assistant"]
