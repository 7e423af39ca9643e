"""The API's index: what the server is, and where its documents and liveness check are."""

from __future__ import annotations

from todo_api.web.representation import JSON, Response
from todo_api.web.served_contract import api_index


def get_index() -> Response:
    return api_index(), 200, JSON
