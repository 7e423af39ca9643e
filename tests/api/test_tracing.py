"""OpenTelemetry (the `otel` extra): a server span per request, named by its route template,
with a child span per SQL statement, in the trace a `traceparent` names."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from tests.conftest import SECRET, Client, bearer, make_token
from tests.spans import span_exporter

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_ID = "00f067aa0ba902b7"


@pytest.fixture(scope="module")
def spans() -> InMemorySpanExporter:
    # The instrumentor is one per process and instruments the first engine it is given (a
    # server process has one app); another module's app may have been first here.
    SQLAlchemyInstrumentor().uninstrument()
    return span_exporter()


def test_a_request_is_one_server_span_with_its_statements(
    serve: Client, spans: InMemorySpanExporter
) -> None:
    client = serve(auth_secret=SECRET, otel_endpoint="http://127.0.0.1:4318")
    alice = bearer(make_token("alice"))
    created = client.post("/api/tasks", json={"title": "traced"}, headers=alice).json()
    spans.clear()

    traceparent = f"00-{TRACE_ID}-{PARENT_ID}-01"
    answer = client.get(f"/api/tasks/{created['id']}", headers=alice | {"traceparent": traceparent})
    assert answer.status_code == 200

    finished = spans.get_finished_spans()
    [server] = [span for span in finished if span.kind == SpanKind.SERVER]
    assert server.name == "GET /api/tasks/{task_id}"
    assert server.attributes is not None
    assert server.attributes["http.route"] == "/api/tasks/{task_id}"
    # The caller's trace: its trace id, and its span as the parent.
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None
    assert format(server.parent.span_id, "016x") == PARENT_ID
    children = [span for span in finished if span.kind == SpanKind.CLIENT]
    assert len(finished) == 1 + len(children)
    for child in children:
        assert child.parent is not None
        assert child.parent.span_id == server.context.span_id
    # The pool may open a connection (a `connect` span); the statements are the rest.
    statements = [span for span in children if span.name != "connect"]
    assert statements
    for statement in statements:
        assert statement.attributes is not None
        assert str(statement.attributes["db.statement"]).startswith("SELECT")
        assert statement.name.startswith("SELECT")


def test_a_query_string_never_reaches_a_span(serve: Client, spans: InMemorySpanExporter) -> None:
    client = serve(auth_secret=SECRET, otel_endpoint="http://127.0.0.1:4318")
    spans.clear()
    ticket = "a-stream-ticket-that-must-stay-secret"
    answer = client.get(f"/api/tasks/events?ticket={ticket}&cursor=x")
    assert answer.status_code == 401
    [server] = [s for s in spans.get_finished_spans() if s.kind == SpanKind.SERVER]
    assert server.attributes is not None
    assert server.attributes["http.url"] == "http://testserver/api/tasks/events"
    for span in spans.get_finished_spans():
        assert ticket not in repr(dict(span.attributes or {}))


def test_without_the_endpoint_nothing_of_opentelemetry_is_imported(tmp_path: Path) -> None:
    # Only its API, which the MCP SDK imports to make spans that do nothing until a provider is
    # set; the SDK, the exporter and the instrumentation (the `otel` extra) stay out.
    program = f"""
import sys
from starlette.testclient import TestClient
from todo_api.app import create_app
from todo_api.settings import Settings
app = create_app(Settings(database_url="sqlite:///{tmp_path / "todo.db"}", auth_secret={SECRET!r}))
with TestClient(app) as client:
    assert client.get("/api/health").status_code == 200
extra = ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instrumentation")
loaded = sorted(name for name in sys.modules if name.startswith(extra))
assert not loaded, loaded
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr


def test_the_endpoint_without_the_extra_is_a_configuration_error(tmp_path: Path) -> None:
    program = f"""
import sys
# As if the otel extra were not installed (its API comes with the MCP SDK).
for name in ("opentelemetry.sdk", "opentelemetry.exporter", "opentelemetry.instrumentation"):
    sys.modules[name] = None
from todo_api.app import create_app
from todo_api.settings import ConfigError, Settings
settings = Settings(
    database_url="sqlite:///{tmp_path / "todo.db"}",
    auth_secret={SECRET!r},
    otel_endpoint="http://127.0.0.1:4318",
)
try:
    create_app(settings)
except ConfigError as exc:
    print(exc)
"""
    result = subprocess.run(
        [sys.executable, "-c", program], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "pip install 'todo-api[otel]'" in result.stdout
