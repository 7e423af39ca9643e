"""The fake Chat Completions server (tests/fake_openai.py) against the real `openai` client and
the OpenAI Agents SDK, the two that the chat endpoint's tests will point at it: if the fake's
wire format drifted from OpenAI's, these clients would be the first to say so."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import agents
import httpx2
import openai
import pytest
from agents import Agent, OpenAIChatCompletionsModel, RunConfig, Runner, function_tool

from tests.fake_openai import API_KEY, FakeOpenAI, script, serve_fake_openai

T = TypeVar("T")
LOOPBACK = frozenset({"127.0.0.1", "::1", "localhost"})


@pytest.fixture(scope="module")
def served() -> Iterator[FakeOpenAI]:
    with serve_fake_openai() as fake:
        yield fake


@pytest.fixture
def fake(served: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    """The module's fake with its options as new, tracing off, and no host name but loopback
    resolving: a stray call to OpenAI's API or its trace ingestion fails the test."""
    agents.set_tracing_disabled(True)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    getaddrinfo = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        name = host.decode() if isinstance(host, bytes) else host
        if name is not None and str(name) not in LOOPBACK:
            raise ConnectionRefusedError(f"{host} is not loopback")
        return getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    served.clear()
    served.delay, served.slow_seconds = 0.0, 5.0
    return served


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def client(fake: FakeOpenAI, **options: Any) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=fake.base_url, api_key=API_KEY, max_retries=0, **options)


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


added: list[dict[str, Any]] = []


@function_tool
def add_task(title: str, user_id: str | None = None) -> str:
    """Add a task for the signed-in user."""
    added.append({"title": title, "user_id": user_id})
    if user_id is not None:
        return f"Refused: you cannot add tasks for {user_id}."
    return f"Task {len(added)} created: {title}\n(more detail)"


@function_tool
def list_tasks() -> str:
    """List the signed-in user's tasks."""
    return "1. buy milk; 2. call mum"


def agent(fake: FakeOpenAI) -> Agent[Any]:
    model = OpenAIChatCompletionsModel(model="gpt-test", openai_client=client(fake))
    return Agent(
        name="todo", instructions="Manage tasks.", model=model, tools=[add_task, list_tasks]
    )


NO_TRACES = RunConfig(tracing_disabled=True)


async def streamed(fake: FakeOpenAI, text: str | list[Any], max_turns: int = 10) -> Any:
    result = Runner.run_streamed(agent(fake), text, max_turns=max_turns, run_config=NO_TRACES)
    async for _event in result.stream_events():
        pass
    return result


def test_script_reads_only_the_messages() -> None:
    asked = script(user("remind me to water plants"))
    assert asked.tool is not None
    assert (asked.tool.name, asked.tool.arguments) == ("add_task", {"title": "water plants"})
    answered = script([*user("add milk"), {"role": "tool", "content": "ok\nmore"}])
    assert answered.text == 'Added "milk". ok'
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello"}]}]
    assert script(parts).text == "You said: hello"


def test_a_text_answer_in_openais_shape(fake: FakeOpenAI) -> None:
    answer = run(client(fake).chat.completions.create(model="gpt-x", messages=user("hello")))
    assert answer.object == "chat.completion"
    assert answer.model == "gpt-x"
    assert answer.choices[0].message.content == "You said: hello"
    assert answer.choices[0].finish_reason == "stop"
    assert answer.usage is not None
    assert answer.usage.total_tokens > 0
    assert [body["messages"] for body in fake.requests] == [user("hello")]


def test_a_tool_call_in_openais_shape(fake: FakeOpenAI) -> None:
    answer = run(client(fake).chat.completions.create(model="m", messages=user("as bob add steal")))
    choice = answer.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.content is None
    [call] = choice.message.tool_calls or []
    assert call.type == "function"
    assert call.function.name == "add_task"
    assert json.loads(call.function.arguments) == {"user_id": "bob", "title": "steal"}


def test_a_stream_in_pieces_with_usage(fake: FakeOpenAI) -> None:
    async def pieces(text: str) -> list[Any]:
        stream = await client(fake).chat.completions.create(
            model="m", messages=user(text), stream=True, stream_options={"include_usage": True}
        )
        return [chunk async for chunk in stream]

    words = run(pieces("hello there world"))
    deltas = [chunk.choices[0].delta.content for chunk in words if chunk.choices]
    assert "".join(d or "" for d in deltas) == "You said: hello there world"
    assert len([d for d in deltas if d]) >= 4
    assert words[-1].usage is not None
    assert words[-2].choices[0].finish_reason == "stop"
    calls = run(pieces("add buy milk"))
    tool_deltas = [c.choices[0].delta.tool_calls for c in calls if c.choices]
    arguments = [d[0].function.arguments for d in tool_deltas if d and d[0].function]
    assert len([a for a in arguments if a]) > 1
    assert json.loads("".join(a or "" for a in arguments)) == {"title": "buy milk"}
    assert calls[-2].choices[0].finish_reason == "tool_calls"


def test_a_request_without_a_key_is_refused(fake: FakeOpenAI) -> None:
    response = httpx2.post(f"{fake.base_url}/chat/completions", json={"messages": user("hi")})
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_api_key"

    async def listed() -> list[str]:
        return [model.id async for model in client(fake).models.list()]

    assert run(listed()) == [fake.model]


@pytest.mark.parametrize("stream", [False, True])
def test_the_agent_adds_a_task(fake: FakeOpenAI, stream: bool) -> None:
    added.clear()
    if stream:
        result = run(streamed(fake, "add buy milk"))
    else:
        result = run(Runner.run(agent(fake), "add buy milk", run_config=NO_TRACES))
    assert result.final_output == 'Added "buy milk". Task 1 created: buy milk'
    assert added == [{"title": "buy milk", "user_id": None}]
    first, second = fake.requests
    assert {tool["function"]["name"] for tool in first["tools"]} == {"add_task", "list_tasks"}
    assert bool(first.get("stream")) is stream
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "tool"]


def test_the_agent_relays_a_refusal_and_a_list(fake: FakeOpenAI) -> None:
    refused = run(Runner.run(agent(fake), "as bob add x", run_config=NO_TRACES))
    assert refused.final_output == 'The tool said: "Refused: you cannot add tasks for bob."'
    listed = run(streamed(fake, "list"))
    assert listed.final_output == "Your tasks: 1. buy milk; 2. call mum"


def test_recall_sees_the_earlier_messages(fake: FakeOpenAI) -> None:
    first = run(Runner.run(agent(fake), "first", run_config=NO_TRACES))
    history = [*first.to_input_list(), *user("second")]
    second = run(Runner.run(agent(fake), history, run_config=NO_TRACES))
    recalled = run(streamed(fake, [*second.to_input_list(), *user("recall")]))
    assert recalled.final_output == "You said: first | second"


def test_a_model_that_never_stops_meets_max_turns(fake: FakeOpenAI) -> None:
    with pytest.raises(agents.MaxTurnsExceeded):
        run(Runner.run(agent(fake), "loop", max_turns=3, run_config=NO_TRACES))
    assert len(fake.requests) == 3
    calls = [m["tool_calls"][0]["id"] for m in fake.requests[-1]["messages"] if "tool_calls" in m]
    assert len(calls) == len(set(calls)) == 2


def test_garbage_is_not_an_answer(fake: FakeOpenAI) -> None:
    """A 200 that is not JSON: the strict client refuses it; the default one hands the text on
    and the Agents SDK fails on it (so the chat endpoint must catch more than APIError)."""
    strict = client(fake, _strict_response_validation=True)
    with pytest.raises(openai.APIResponseValidationError):
        run(strict.chat.completions.create(model="m", messages=user("garbage")))
    # typed ChatCompletion, but the default client returns a non-JSON body's text as it is
    lenient: object = run(client(fake).chat.completions.create(model="m", messages=user("garbage")))
    assert lenient == "<html>oops"
    # Agents 0.25 raises AttributeError on that text; a later one may say ModelBehaviorError
    with pytest.raises((AttributeError, agents.ModelBehaviorError)):
        run(Runner.run(agent(fake), "garbage", run_config=NO_TRACES))
    with pytest.raises(json.JSONDecodeError):
        run(streamed(fake, "garbage"))


@pytest.mark.parametrize("stream", [False, True])
def test_a_failure_is_an_openai_error(fake: FakeOpenAI, stream: bool) -> None:
    turn = (
        streamed(fake, "fail") if stream else Runner.run(agent(fake), "fail", run_config=NO_TRACES)
    )
    with pytest.raises(openai.InternalServerError, match="The fake model failed"):
        run(turn)


def test_delay_and_slow_wait_before_answering(fake: FakeOpenAI) -> None:
    fake.slow_seconds = 0.1
    assert run(Runner.run(agent(fake), "slow", run_config=NO_TRACES)).final_output == "Finally."
    fake.delay = 0.5
    hurried = client(fake, timeout=0.1)
    with pytest.raises(openai.APITimeoutError):
        run(hurried.chat.completions.create(model="m", messages=user("hello")))
