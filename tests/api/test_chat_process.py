"""A conversation goes on across server processes: the state lives in the database only."""

from __future__ import annotations

import dataclasses
import os
import uuid
from pathlib import Path

import httpx2
from starlette.testclient import TestClient

from tests.conftest import AUDIENCE, ISSUER, SECRET, bearer, make_token
from tests.fake_openai import API_KEY, MODEL, serve_fake_openai
from tests.network import serving
from todo_api.app import create_app
from todo_api.chat_settings import ChatSettings
from todo_api.settings import Settings


def test_another_server_process_answers_the_next_message_with_the_history(
    tmp_path: Path, settings: Settings
) -> None:
    user = f"chatter-{uuid.uuid4().hex[:8]}"
    headers = bearer(make_token(user))
    with serve_fake_openai() as fake:
        env = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("BETTER_AUTH", "JWKS", "REDIS", "OPENAI", "CHAT_"))
        } | {
            "DATABASE_URL": settings.database_url,
            "BETTER_AUTH_SECRET": SECRET,
            "JWT_ISSUER": ISSUER,
            "JWT_AUDIENCE": AUDIENCE,
            "OPENAI_API_KEY": API_KEY,
            "OPENAI_BASE_URL": fake.base_url,
            "CHAT_MODEL": MODEL,
        }
        with serving(env, tmp_path) as (base, _process):
            first = httpx2.post(f"{base}/chat", json={"message": "add buy milk"}, headers=headers)
            assert first.status_code == 200, first.text
            conversation = first.json()["conversation_id"]
        # This process never saw the first turn: all it knows, it reads from the database.
        chat = ChatSettings(api_key=API_KEY, base_url=fake.base_url, model=MODEL)
        app = create_app(dataclasses.replace(settings, chat=chat))
        with TestClient(app) as client:
            body = {"message": "recall", "conversation_id": conversation}
            answer = client.post("/api/chat", json=body, headers=headers)
            assert answer.status_code == 200, answer.text
            assert answer.json()["response"] == "You said: add buy milk"
            titles = [task["title"] for task in client.get("/api/tasks", headers=headers).json()]
            assert titles == ["buy milk"]
