"""The real app over a real database: SQLite by default, PostgreSQL with TEST_DATABASE_URL."""

from __future__ import annotations

import datetime as dt
import os
import secrets
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from storage import build_engine
from tests.databases import fresh_postgres
from todo_api.app import create_app
from todo_api.settings import Settings

# Made for each run (`todo-api serve` refuses any secret the project ships), and kept in the
# environment: this module is imported twice, as `conftest` and as `tests.conftest`.
SECRET = os.environ.setdefault("TODO_API_TEST_SECRET", secrets.token_urlsafe(48))
ISSUER = "http://localhost:3000"
AUDIENCE = "http://localhost:3000"


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        with fresh_postgres(url) as database:
            yield database
    else:
        path: Path = tmp_path_factory.mktemp("db") / "todo.db"
        yield f"sqlite:///{path}"


@pytest.fixture(scope="session")
def settings(database_url: str) -> Settings:
    return Settings(
        database_url=database_url,
        auth_secret=SECRET,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        cors_origins=("http://localhost:3000",),
        validate_responses=True,
        # The suite sends far more than a person would; the limits have tests of their own.
        rate_limit_per_user=1_000_000,
        rate_limit_per_address=1_000_000,
    )


@pytest.fixture(scope="session")
def app_client(settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings)
    # raise_server_exceptions=False: a fault must reach the client as the 500 problem it gets.
    with TestClient(app, follow_redirects=False, raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="session")
def engine(database_url: str, app_client: TestClient) -> Iterator[Engine]:
    engine = build_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def client(app_client: TestClient, engine: Engine) -> Iterator[TestClient]:
    yield app_client
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM tasks"))
        connection.execute(text("DELETE FROM task_owners"))
        connection.execute(text("DELETE FROM idempotency_keys"))


Client = Callable[..., TestClient]


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Client]:
    """Start another app with the given settings; each call gets an SQLite database of its own."""
    with ExitStack() as stack:

        def start(**settings: Any) -> TestClient:
            settings.setdefault("database_url", f"sqlite:///{tmp_path / uuid.uuid4().hex}.db")
            settings.setdefault("rate_limit_per_user", 1_000_000)
            settings.setdefault("rate_limit_per_address", 1_000_000)
            app = create_app(Settings(**settings))
            client = TestClient(app, raise_server_exceptions=False)
            return stack.enter_context(client)

        yield start


def make_token(subject: Any = "alice", **overrides: Any) -> str:
    now = dt.datetime.now(dt.UTC)
    claims: dict[str, Any] = {
        "sub": subject,
        "iat": now,
        "exp": now + dt.timedelta(minutes=15),
        "iss": ISSUER,
        "aud": AUDIENCE,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(claims, SECRET, algorithm="HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def alice() -> dict[str, str]:
    return bearer(make_token("alice"))


@pytest.fixture
def bob() -> dict[str, str]:
    return bearer(make_token("bob"))


@pytest.fixture
def create(client: TestClient, alice: dict[str, str]) -> Callable[..., dict[str, Any]]:
    """Create a task as alice (or `headers`) and return it."""

    def create(headers: dict[str, str] | None = None, **fields: Any) -> dict[str, Any]:
        fields.setdefault("title", "a task")
        response = client.post("/api/tasks", json=fields, headers=headers or alice)
        assert response.status_code == 201, response.text
        return response.json()

    return create


# The two path families every task operation has: the signed-in user's own, and by user id.
FAMILIES = ["/api/tasks", "/api/alice/tasks"]


@pytest.fixture(params=FAMILIES, ids=["own", "by-user-id"])
def base(request: pytest.FixtureRequest) -> str:
    return request.param


def counting_jwt_decode(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """From now on, the tokens PyJWT is asked to decode, in order."""
    calls: list[str] = []
    decode = jwt.decode

    def counted(token: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(token)
        return decode(token, *args, **kwargs)

    monkeypatch.setattr(jwt, "decode", counted)
    return calls
