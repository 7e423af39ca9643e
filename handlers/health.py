from __future__ import annotations

from handlers.tasks import JSON


def get_health() -> tuple[dict[str, str], int, dict[str, str]]:
    return {"status": "ok"}, 200, JSON
