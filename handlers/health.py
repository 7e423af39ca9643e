"""The probes a load balancer or Kubernetes asks: alive, and ready to serve."""

from __future__ import annotations

from connexion import request

from todo_api.web.representation import JSON, Response


def get_health() -> Response:
    return {"status": "ok"}, 200, JSON


def get_ready() -> Response:
    # An unreachable database raises here and is answered 503 (todo_api.web.problems).
    request.state.readiness.check()
    return {"status": "ok"}, 200, JSON
