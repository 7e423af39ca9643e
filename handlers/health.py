from __future__ import annotations

from connexion import request

from handlers.tasks import JSON

Response = tuple[dict[str, str], int, dict[str, str]]


def get_health() -> Response:
    return {"status": "ok"}, 200, JSON


def get_ready() -> Response:
    # An unreachable database raises here and is answered 503 (todo_api.web.problems).
    request.state.readiness.check()
    return {"status": "ok"}, 200, JSON
