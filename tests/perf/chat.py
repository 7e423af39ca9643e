"""Server CPU per chat turn, beyond the model's own time:

    python -m tests.perf.chat [--turns N] [--rounds N]

The model is the scripted fake (tests/fake_openai.py) in a process of its own, so its CPU is
not counted; the app is called in this process as an ASGI app (tests/perf/cpu.py's Client), on
a fresh SQLite file, and this process's CPU time (every thread) is divided by the turns. Each
figure is the least of its rounds, and rounds alternate, as in tests/perf/cpu.py.

- `create`: POST /api/tasks, the baseline of the same run.
- `chat-add`: POST /api/chat "add ...": two model calls, one add_task tool call, and the
  conversation's four writes.
- `chat-text`: POST /api/chat "hello": one model call, no tool.
- `sdk-turn` and `loop-turn`: the assistant alone, with a tool that answers at once: the
  Agents SDK's agent (todo_api/chat/agent.py), and a plain tool loop on the `openai` package
  (below), over the same fake model. Their ratio is what the SDK costs per turn.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import openai

from tests.conftest import AUDIENCE, ISSUER, SECRET, make_token
from tests.fake_openai import API_KEY, MODEL
from tests.perf.cpu import Client
from tests.perf.servers import fake_model
from todo_api.chat.agent import INSTRUCTIONS, AgentAssistant
from todo_api.chat_settings import ChatSettings
from todo_api.usecases.chat import ToolOutcome, ToolSpec

ADD_TASK = ToolSpec(
    "add_task",
    "Create a task",
    {"type": "object", "properties": {"title": {"type": "string"}}, "required": ["title"]},
)


async def instant_tool(name: str, arguments: Mapping[str, Any]) -> ToolOutcome:
    return ToolOutcome("ok", f"Created: task 1 {arguments.get('title')!r}.", {"id": 1})


async def plain_loop(
    client: openai.AsyncOpenAI, message: str, limit: int = 8
) -> tuple[str, list[str]]:
    """The alternative weighed against the SDK: Chat Completions and tool calls, by hand."""
    tools: Any = [
        {
            "type": "function",
            "function": {
                "name": ADD_TASK.name,
                "description": ADD_TASK.description,
                "parameters": ADD_TASK.parameters,
            },
        }
    ]
    messages: list[Any] = [
        {"role": "system", "content": INSTRUCTIONS.format(timezone="UTC", now="now")},
        {"role": "user", "content": message},
    ]
    called: list[str] = []
    for _ in range(limit + 1):
        completion = await client.chat.completions.create(
            model=MODEL, messages=messages, tools=tools
        )
        answer = completion.choices[0].message
        if not answer.tool_calls:
            return answer.content or "", called
        messages.append(answer.model_dump(exclude_none=True))
        for call in answer.tool_calls:
            function = call.function  # type: ignore[union-attr]
            outcome = await instant_tool(function.name, json.loads(function.arguments))
            called.append(function.name)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": outcome.text})
    return "", called


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.chat", description=__doc__)
    parser.add_argument("--turns", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    logging.disable(logging.CRITICAL)
    with tempfile.TemporaryDirectory() as directory, fake_model(Path(directory)) as base_url:
        best = asyncio.run(_run(base_url, f"sqlite:///{directory}/chat.db", args))
    print(f"{'scenario':<10} {'ms CPU':>8}")
    for scenario, ms in best.items():
        print(f"{scenario:<10} {ms:>8.2f}")
    print(f"chat-add/create: {best['chat-add'] / best['create']:.2f}")
    print(f"chat-text/create: {best['chat-text'] / best['create']:.2f}")
    print(f"sdk-turn/loop-turn: {best['sdk-turn'] / best['loop-turn']:.2f}")
    print("CHAT-CPU-JSON " + json.dumps(best))
    return 0


async def _run(base_url: str, database_url: str, args: argparse.Namespace) -> dict[str, float]:
    os.environ.update(
        DATABASE_URL=database_url,
        BETTER_AUTH_SECRET=SECRET,
        JWT_ISSUER=ISSUER,
        JWT_AUDIENCE=AUDIENCE,
        OPENAI_API_KEY=API_KEY,
        OPENAI_BASE_URL=base_url,
        CHAT_MODEL=MODEL,
        RATE_LIMIT_ENABLED="0",
        CHAT_RATE_LIMIT_PER_USER="1000000",
        CHAT_CONVERSATION_QUOTA="1000000",
        CHAT_MESSAGE_QUOTA="1000000",
    )
    from todo_api.app import create_app
    from todo_api.settings import Settings

    app = Client(create_app(Settings.from_env()))
    await app.start()
    token = make_token("bench")
    chat = ChatSettings(api_key=API_KEY, base_url=base_url, model=MODEL)
    assistant = AgentAssistant(chat, [ADD_TASK])
    plain = openai.AsyncOpenAI(api_key=API_KEY, base_url=base_url, max_retries=0)

    def post(path: str, body: dict[str, Any]) -> Callable[[int], Awaitable[Any]]:
        async def one(n: int) -> None:
            data = json.dumps({k: v.format(n=n) for k, v in body.items()}).encode()
            status, answer = await app.request("POST", path, token, data)
            if status not in (200, 201):
                raise RuntimeError(f"{path}: {status} {answer[:300]!r}")

        return one

    async def sdk(n: int) -> None:
        reply = await assistant.reply([], f"add task {n}", instant_tool)
        assert reply.tool_calls, reply

    async def loop(n: int) -> None:
        _text, called = await plain_loop(plain, f"add task {n}")
        assert called == ["add_task"], called

    scenarios: dict[str, Callable[[int], Awaitable[Any]]] = {
        "create": post("/api/tasks", {"title": "task {n}"}),
        "chat-add": post("/api/chat", {"message": "add task {n}"}),
        "chat-text": post("/api/chat", {"message": "hello {n}"}),
        "sdk-turn": sdk,
        "loop-turn": loop,
    }
    best = {name: float("inf") for name in scenarios}
    try:
        for scenario in scenarios.values():  # warm-up: imports, caches, connections
            for n in range(5):
                await scenario(n)
        for _ in range(args.rounds):
            for name, scenario in scenarios.items():
                started = time.process_time()
                for n in range(args.turns):
                    await scenario(n)
                spent = (time.process_time() - started) / args.turns * 1000
                best[name] = min(best[name], spent)
    finally:
        await assistant.close()
        await plain.close()
        await app.stop()
    return best


if __name__ == "__main__":
    sys.exit(main())
