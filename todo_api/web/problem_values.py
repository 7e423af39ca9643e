"""Problems where no HTTP answer carries them: as a value inside another answer (an MCP tool
error, a chat stream's `error` event). The same problem+json members as problems.py's answers,
with the header a value has no place for (Retry-After) as `retry_after`, in seconds."""

from __future__ import annotations

from typing import Any, cast

from connexion.exceptions import ProblemException

from todo_api.logs import current_request_id
from todo_api.metrics import Metrics
from todo_api.web.problems import (
    DATABASE_ERRORS,
    DOMAIN_ERRORS,
    TITLES,
    UNEXPECTED,
    DomainError,
    as_problem,
    database_unavailable,
    log_unexpected,
)


def problem_for(exc: Exception, metrics: Metrics | None = None) -> ProblemException:
    """What an exception stands for: a domain error's problem, the database's 503, or a 500
    (logged, its words never shown)."""
    if isinstance(exc, ProblemException):
        return exc
    if isinstance(exc, DOMAIN_ERRORS):
        return as_problem(cast("DomainError", exc))
    if isinstance(exc, DATABASE_ERRORS):
        return database_unavailable(exc, metrics)
    log_unexpected(exc)
    return ProblemException(status=500, title=TITLES[500], detail=UNEXPECTED)


def problem_value(problem: ProblemException) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": problem.type or "about:blank",
        "title": problem.title,
        "status": problem.status,
        "detail": problem.detail,
    }
    body |= problem.ext or {}
    retry_after = (problem.headers or {}).get("Retry-After")
    if retry_after is not None:
        body["retry_after"] = int(retry_after)
    request_id = current_request_id()
    if request_id is not None:
        body["request_id"] = request_id
    return body
