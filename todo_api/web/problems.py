"""Every error answer is RFC 9457 problem+json, built here and nowhere else."""

from __future__ import annotations

import logging
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeAlias

from connexion import AsyncApp
from connexion.exceptions import OAuthProblem, ProblemException
from connexion.lifecycle import ConnexionRequest, ConnexionResponse
from connexion.problem import problem
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException
from starlette.responses import Response

from storage import (
    CursorExpired,
    IdempotencyKeyReused,
    InvalidCursor,
    InvalidTask,
    PreconditionFailed,
    QuotaExceeded,
    TagNotFound,
    TaskNotFound,
)
from storage.errors import ChatQuotaExceeded, ConversationNotFound
from todo_api.auth.errors import CredentialsUncheckable, Unauthenticated
from todo_api.contract import allowed_methods
from todo_api.logs import current_request_id, note_error
from todo_api.metrics import Metrics
from todo_api.usecases.errors import (
    ChatUnavailable,
    InvalidInput,
    ModelFailed,
    ModelUnavailable,
    StreamLimit,
)
from todo_api.web.representation import task_etag, task_json

logger = logging.getLogger("todo_api")

TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    408: "Request Timeout",
    409: "Conflict",
    410: "Gone",
    412: "Precondition Failed",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    431: "Request Header Fields Too Large",
    500: "Internal Server Error",
    501: "Not Implemented",
    502: "Bad Gateway",
    503: "Service Unavailable",
    505: "HTTP Version Not Supported",
}
REALM = 'Bearer realm="todo-api"'
RETRY_AFTER_SECONDS = 5
# A server without a model will not have one in seconds.
CHAT_UNAVAILABLE_RETRY = 300
# Enough to fix a form; a body with thousands of bad keys gets no thousand-line answer.
MAX_ERRORS = 20


def retry_seconds(seconds: float) -> int:
    """A wait as Retry-After states it: whole seconds, rounded up, at least one."""
    return max(1, math.ceil(seconds))


def retry_after_header(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(retry_seconds(seconds))}


class Forbidden(ProblemException):  # type: ignore[misc]  # Connexion is untyped
    def __init__(self, detail: str) -> None:
        super().__init__(status=403, title=TITLES[403], detail=detail)


class ContentTooLarge(ProblemException):  # type: ignore[misc]  # Connexion is untyped
    def __init__(self, max_bytes: int) -> None:
        super().__init__(
            status=413,
            title=TITLES[413],
            detail=f"The body is over the limit of {max_bytes} bytes.",
            # The rest of the body is not read: the connection cannot be reused.
            headers={"Connection": "close"},
        )


class RequestTimeout(ProblemException):  # type: ignore[misc]  # Connexion is untyped
    def __init__(self, detail: str) -> None:
        # The rest of the body may still come: the connection cannot be reused.
        super().__init__(
            status=408, title=TITLES[408], detail=detail, headers={"Connection": "close"}
        )


class UnsupportedContentCoding(ProblemException):  # type: ignore[misc]  # Connexion is untyped
    def __init__(self, codings: str) -> None:
        # RFC 9110 section 15.5.16: say which codings would have been accepted.
        super().__init__(
            status=415,
            title=TITLES[415],
            detail=f"The body must be sent without a content coding, not {codings[:100]}.",
            # The body is refused unread: the connection cannot be reused.
            headers={"Accept-Encoding": "identity", "Connection": "close"},
        )


class TooManyRequests(ProblemException):  # type: ignore[misc]  # Connexion is untyped
    def __init__(
        self, headers: dict[str, str], detail: str = "Too many requests for this user; slow down."
    ) -> None:
        super().__init__(status=429, title=TITLES[429], detail=detail, headers=headers)


class Unavailable(ProblemException):  # type: ignore[misc]  # Connexion is untyped
    """503: something this service depends on is down; the client should retry, not sign out."""

    def __init__(self, detail: str, retry_after: float) -> None:
        super().__init__(
            status=503,
            title=TITLES[503],
            detail=detail,
            headers=retry_after_header(retry_after),
        )


class ValidationProblem(ProblemException):  # type: ignore[misc]  # Connexion is untyped
    """422 naming each offending field: `{"pointer": "#/title"}` or `{"parameter": "limit"}`."""

    def __init__(self, errors: list[dict[str, str]]) -> None:
        # One schema can reach a value along several paths (allOf), each reporting it again.
        unique = list({tuple(sorted(error.items())): error for error in errors}.values())
        shown = unique[:MAX_ERRORS]
        detail = "; ".join(_describe(error) for error in shown)
        if len(unique) > len(shown):
            detail += f"; and {len(unique) - len(shown)} more"
        super().__init__(status=422, title=TITLES[422], detail=detail, ext={"errors": shown})


def _describe(error: dict[str, str]) -> str:
    where = error.get("pointer") or error.get("parameter") or "request"
    return f"{where}: {error['detail']}"


def _answer(
    status: int,
    detail: str | None,
    *,
    title: str | None = None,
    headers: dict[str, str] | None = None,
    ext: dict[str, Any] | None = None,
) -> ConnexionResponse:
    request_id = current_request_id()
    if request_id is not None:
        ext = {**(ext or {}), "request_id": request_id}
    return problem(
        status=status,
        title=title or TITLES.get(status, "Error"),
        detail=detail,
        headers=headers,
        ext=ext,
    )


def problem_body(status: int, detail: str) -> tuple[bytes, str]:
    """The body and media type of the problem answer, for code outside Connexion entirely."""
    answer = _answer(status, detail)
    body = answer.body if isinstance(answer.body, bytes) else str(answer.body).encode()
    return body, answer.mimetype or "application/problem+json"


def asgi_response(status: int, detail: str, headers: Mapping[str, str]) -> Response:
    """The same problem answer, for middleware that runs outside Connexion's error handling."""
    body, media_type = problem_body(status, detail)
    return Response(body, status, headers=dict(headers), media_type=media_type)


def _problem(request: ConnexionRequest, exc: ProblemException) -> ConnexionResponse:
    headers = dict(exc.headers or {})
    if exc.status == 401:
        # RFC 6750 section 3: no error code when the request carried no credentials at all.
        if request.headers.get("authorization"):
            headers["WWW-Authenticate"] = f'{REALM}, error="invalid_token"'
        else:
            headers["WWW-Authenticate"] = REALM
    if exc.status >= 500:
        logger.error("%s: %s", exc.status, exc.detail, extra={"event": "server_error"})
    return _answer(
        exc.status,
        exc.detail,
        title=exc.title or TITLES.get(exc.status),
        headers=headers,
        ext=exc.ext,
    )


# Every error the rules and storage raise for what a caller sent or reached, and so the one
# table of what each means as a problem: HTTP answers it, and the MCP door's tool errors say it.
DomainError: TypeAlias = (
    Unauthenticated
    | CredentialsUncheckable
    | InvalidInput
    | TaskNotFound
    | TagNotFound
    | InvalidTask
    | InvalidCursor
    | QuotaExceeded
    | PreconditionFailed
    | CursorExpired
    | IdempotencyKeyReused
    | StreamLimit
    | ConversationNotFound
    | ChatQuotaExceeded
    | ChatUnavailable
    | ModelUnavailable
)
DOMAIN_ERRORS: tuple[type[Exception], ...] = typing.get_args(DomainError)

CURSOR_EXPIRED = (
    "Changes from before this cursor are no longer kept (deletions are purged after the "
    "retention period); sync again from the beginning, without a cursor."
)


def _problem_of(status: int, detail: str, **more: Any) -> ProblemException:
    return ProblemException(status=status, title=TITLES[status], detail=detail, **more)


def _field(status: int, error: dict[str, str]) -> ProblemException:
    """A problem naming one field, as ValidationProblem names each."""
    return _problem_of(status, _describe(error), ext={"errors": [error]})


# The rules' errors are the problems they stand for: logged under the problem's name, as a
# problem the web layer raises itself would be.
def as_problem(exc: DomainError) -> ProblemException:
    if isinstance(exc, Unauthenticated):
        return OAuthProblem(detail=exc.detail)
    if isinstance(exc, CredentialsUncheckable):
        return Unavailable(exc.detail, exc.retry_after)
    if isinstance(exc, InvalidInput):
        return ValidationProblem(exc.errors)
    if isinstance(exc, TaskNotFound):
        return _problem_of(404, f"There is no task {exc.args[0]}.")
    if isinstance(exc, TagNotFound):
        return _problem_of(404, f"None of your tasks carries the tag {exc.args[0]!r}.")
    if isinstance(exc, InvalidTask):
        return _field(422, {"pointer": exc.pointer, "detail": exc.detail})
    if isinstance(exc, InvalidCursor):
        return _field(422, {"parameter": exc.parameter, "detail": str(exc)})
    if isinstance(exc, QuotaExceeded):
        detail = (
            f"You already have {exc.quota} tasks, the most one user may keep; delete some first."
        )
        return _problem_of(409, detail)
    if isinstance(exc, PreconditionFailed):
        # The current task comes along, so that a client can merge and retry without a GET.
        detail = "The task has changed since the version in If-Match; nothing was written."
        return _problem_of(
            412,
            detail,
            headers={"ETag": task_etag(exc.current)},
            ext={"task": task_json(exc.current)},
        )
    if isinstance(exc, CursorExpired):
        return _problem_of(410, CURSOR_EXPIRED)
    if isinstance(exc, IdempotencyKeyReused):
        detail = "was already used with a different request; use a new key for a new task"
        return _field(422, {"parameter": "Idempotency-Key", "detail": detail})
    if isinstance(exc, ConversationNotFound):
        return _problem_of(404, f"There is no {exc.what} {exc.args[0]}.")
    if isinstance(exc, ChatQuotaExceeded):
        detail = (
            f"You already keep {exc.quota} {exc.what}, the most one user may; "
            "delete a conversation first."
        )
        return _problem_of(409, detail)
    if isinstance(exc, ChatUnavailable):
        return _problem_of(503, str(exc), headers=retry_after_header(CHAT_UNAVAILABLE_RETRY))
    if isinstance(exc, ModelUnavailable):
        # The user's message is stored: the client sends the next one, not this one again.
        status = 502 if isinstance(exc, ModelFailed) else 503
        return _problem_of(status, exc.detail, headers=retry_after_header(exc.retry_after))
    if exc.per_user:
        detail = f"You have {exc.limit} event streams open, the most one user may; close one."
        return _problem_of(429, detail, headers=retry_after_header(RETRY_AFTER_SECONDS))
    detail = "This server has as many event streams open as it serves; try again shortly."
    return _problem_of(503, detail, headers=retry_after_header(RETRY_AFTER_SECONDS))


# Checking a credential can fail as a problem of its own kind (OAuthProblem, Unavailable),
# which the log names.
_CREDENTIAL_ERRORS = (Unauthenticated, CredentialsUncheckable, InvalidInput)


def _domain_error(request: ConnexionRequest, exc: DomainError) -> ConnexionResponse:
    problem = as_problem(exc)
    if isinstance(exc, _CREDENTIAL_ERRORS):
        return _as_problem(request, problem)
    return _answer(
        problem.status,
        problem.detail,
        title=problem.title,
        headers=problem.headers,
        ext=problem.ext,
    )


def _as_problem(request: ConnexionRequest, exc: ProblemException) -> ConnexionResponse:
    note_error(type(exc).__name__)
    return _problem(request, exc)


def _http_error(request: ConnexionRequest, exc: HTTPException) -> ConnexionResponse:
    """Routing's own errors: 404 for an unknown path, 405 for a method the path lacks."""
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        # Connexion routes each operation apart, so its Allow names one operation's method only.
        headers["Allow"] = ", ".join(allowed_methods(request.url.path))
    return _answer(exc.status_code, exc.detail, headers=headers)


# Infrastructure failing under a request: neither door's caller did anything wrong.
DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, PoolTimeout)
UNEXPECTED = "The server met an unexpected error; it has been logged."


def database_unavailable(exc: Exception, metrics: Metrics | None) -> ProblemException:
    """Unreachable, restarting, or every pooled connection busy past the pool's timeout."""
    logger.error("database unavailable: %s", exc, extra={"event": "database_unavailable"})
    if metrics is not None and isinstance(exc, PoolTimeout):
        metrics.pool_timeouts.inc()
    return Unavailable("The database is unavailable; try again shortly.", RETRY_AFTER_SECONDS)


def log_unexpected(exc: BaseException) -> None:
    logger.exception("unexpected error", exc_info=exc, extra={"event": "unexpected_error"})


def _database_unavailable(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    return database_unavailable(exc, request.state.metrics).to_problem()


def _unexpected(_request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
    log_unexpected(exc)
    return _answer(500, UNEXPECTED)


Handler = Callable[[ConnexionRequest, Any], ConnexionResponse]


def _noted(handle: Handler) -> Handler:
    """The handler, naming the exception it answers as the request's `error` in the log."""

    def noted(request: ConnexionRequest, exc: Exception) -> ConnexionResponse:
        note_error(type(exc).__name__)
        return handle(request, exc)

    return noted


def register(app: AsyncApp) -> None:
    handlers: list[tuple[type[Exception], Handler]] = [
        (ProblemException, _problem),
        (HTTPException, _http_error),
        *((kind, _domain_error) for kind in DOMAIN_ERRORS),
        *((kind, _database_unavailable) for kind in DATABASE_ERRORS),
        (Exception, _unexpected),
    ]
    for kind, handle in handlers:
        app.add_error_handler(kind, _noted(handle))
