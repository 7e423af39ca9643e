"""OpenTelemetry traces of requests and their SQL statements (the `otel` extra), imported only
when OTEL_EXPORTER_OTLP_ENDPOINT is set."""

from __future__ import annotations

import os
from typing import Any

from connexion import AsyncApp
from connexion.middleware import MiddlewarePosition
from opentelemetry import trace
from opentelemetry.instrumentation.asgi import OpenTelemetryMiddleware
from opentelemetry.instrumentation.sqlalchemy import SQLAlchemyInstrumentor
from sqlalchemy import Engine

from todo_api.web.observe import route_label


def trace_requests(app: AsyncApp, engine: Engine) -> None:
    """A server span per request, named by its route template, with a child span per SQL
    statement; an incoming `traceparent` is honoured (W3C trace context, OpenTelemetry's
    default propagator). Spans go to the tracer provider already set, if any (tests set one
    with an in-memory exporter), else to an OTLP/HTTP exporter configured by the OTEL_*
    variables."""
    provider = _provider()
    SQLAlchemyInstrumentor().instrument(
        engine=engine,
        tracer_provider=provider,
        # It declares SQLAlchemy < 2.1 and would do nothing on ours; the engine events it
        # listens to are the same in 2.1 (tests/api/test_tracing.py holds it to that).
        skip_dep_check=True,
    )
    app.add_middleware(
        OpenTelemetryMiddleware,
        position=MiddlewarePosition.BEFORE_EXCEPTION,
        default_span_details=_span_details,
        tracer_provider=provider,
        # The spans of each ASGI message sent and received say nothing a reader wants.
        exclude_spans=["receive", "send"],
        server_request_hook=_without_query,
    )


def _span_details(scope: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    route = route_label(scope["path"])
    # OpenTelemetry's HTTP conventions: `{method} {http.route}`.
    return f"{scope['method']} {route}", {"http.route": route}


def _without_query(span: trace.Span, scope: dict[str, Any]) -> None:
    """The request's URL without its query string, which may carry a credential (an event
    stream's `?ticket=`, a mistaken `?token=`): traces keep no more of a request than the log."""
    if span.is_recording():
        host = dict(scope.get("headers") or []).get(b"host", b"").decode("latin-1")
        span.set_attribute("http.url", f"{scope.get('scheme', 'http')}://{host}{scope['path']}")


def _provider() -> trace.TracerProvider:
    current = trace.get_tracer_provider()
    if not isinstance(current, trace.ProxyTracerProvider):
        return current
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    resource = Resource.create({SERVICE_NAME: os.environ.get("OTEL_SERVICE_NAME", "todo-api")})
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace.set_tracer_provider(provider)
    return provider
