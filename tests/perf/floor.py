"""The floor: the service's work for the benchmark's requests with the least machinery.

A bare Starlette app: the same HS256 check (PyJWT, same options), the same SQL statements
(tests/perf/sql.py) on an engine built by storage.build_engine with the same pool settings,
run in Starlette's thread pool as Connexion runs our sync handlers, and the same JSON bodies
and paging headers. No request validation, no rate limiting, no problem+json, no middleware.
What the service costs beyond this is the cost of its Python layers.

Run: `uvicorn tests.perf.floor:app` with DATABASE_URL and BETTER_AUTH_SECRET set.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlencode

import jwt
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from storage import build_engine
from tests.perf import sql
from todo_api.settings import Settings

PRIORITY_NAMES = {1: "low", 2: "medium", 3: "high"}
PRIORITY_RANKS = {name: rank for rank, name in PRIORITY_NAMES.items()}
LEEWAY = dt.timedelta(seconds=30)
# The headers the service puts on every authenticated answer (not the rate-limit ones).
HEADERS = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-store"}
UNAUTHORIZED = Response(status_code=401, headers={"WWW-Authenticate": "Bearer"})
NOT_FOUND = Response(status_code=404)

SETTINGS = Settings.from_env()
_engine: Engine | None = None


@asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    global _engine
    _engine = build_engine(SETTINGS.database_url, SETTINGS.pool)
    try:
        yield
    finally:
        _engine.dispose()


def _run(statements: Sequence[tuple[str, dict[str, Any]]]) -> list[list[Any]]:
    """Each statement's rows (none for those that return none), all in one transaction."""
    assert _engine is not None
    results: list[list[Any]] = []
    with _engine.begin() as connection:
        for statement, params in statements:
            result = connection.exec_driver_sql(statement, params)
            results.append(list(result.all()) if result.returns_rows else [])
    return results


def _create(task: dict[str, Any]) -> Sequence[Any] | None:
    """The new task's row, or None past the quota: one statement, as the service's."""
    assert _engine is not None
    with _engine.begin() as connection:
        return connection.exec_driver_sql(sql.CREATE, task).first()


def _write(
    statement: str, again: str, params: dict[str, Any], *, toggle: bool = False
) -> Sequence[Any] | None:
    """A write of one task, as the service's: the owner's row and the task in one statement.
    Only if it wrote no task: the task's UPDATE again, on its own, and if that writes nothing
    either, the task as it is (rolled back). After a toggle, the owner's completed count is
    corrected if the statement's guess of it was wrong."""
    assert _engine is not None
    with _engine.connect() as connection, connection.begin() as transaction:
        first = connection.exec_driver_sql(statement, params).first()
        if first is None:
            transaction.rollback()
            return None
        row: Sequence[Any] | None = first[:-2]
        seq, moved = first[-2:]
        if row is not None and row[0] is None:
            row = connection.exec_driver_sql(again, params | {"seq": seq}).first()
        if row is None:
            current = connection.exec_driver_sql(sql.GET, params).first()
            transaction.rollback()
            return current
        if toggle and (found := 1 if row[4] else -1) != moved:
            correction = {"user_id": params["user_id"], "moved": found - moved}
            connection.exec_driver_sql(sql.OWNER_COMPLETED, correction)
        transaction.commit()
        return row


def _user(request: Request) -> str | None:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        return None
    try:
        claims = jwt.decode(
            token,
            SETTINGS.auth_secret,
            algorithms=["HS256"],
            leeway=LEEWAY,
            options={"require": ["exp", "sub"], "verify_aud": False, "verify_iss": False},
        )
    except jwt.PyJWTError:
        return None
    subject = claims["sub"]
    return subject if isinstance(subject, str) else None


def _instant(value: dt.datetime | None) -> str | None:
    if value is None:
        return None
    return value.astimezone(dt.UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def _task(row: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": row[0],
        "user_id": row[1],
        "title": row[2],
        "description": row[3],
        "completed": row[4],
        "priority": PRIORITY_NAMES[row[5]],
        "tags": row[6],
        "due_date": _instant(row[7]),
        "created_at": _instant(row[8]),
        "updated_at": _instant(row[9]),
        "completed_at": _instant(row[10]),
        "recurrence": row[12],
        "timezone": row[13],
        "series_id": row[14],
        "next_task_id": row[15],
        # The floor's tasks (seeded, or made by its create) have no reminder: seconds or null.
        "remind_before": None if row[16] is None else f"PT{row[16]}S",
        "remind_at": _instant(row[17]),
    }


def _etag(row: Sequence[Any]) -> dict[str, str]:
    return {"ETag": f'"{row[0]}-{row[11]}"'}


def _encode_cursor(created_at: dt.datetime, task_id: int) -> str:
    # The service's cursor format (storage/cursors.py), so that either server reads the other's.
    position = {"s": "created", "o": "desc", "k": [created_at.isoformat()], "i": task_id}
    raw = json.dumps(position, ensure_ascii=False, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).rstrip(b"=").decode()


def _decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    data = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    return dt.datetime.fromisoformat(data["k"][0]), data["i"]


async def list_tasks(request: Request) -> Response:
    user = _user(request)
    if user is None:
        return UNAUTHORIZED
    limit = int(request.query_params.get("limit", "100"))
    cursor = request.query_params.get("cursor")
    params: dict[str, Any] = {"user_id": user, "limit": limit + 1}
    page = sql.LIST_PAGE
    if cursor:
        params["after_created"], params["after_id"] = _decode_cursor(cursor)
        page = sql.LIST_PAGE_AFTER
    owners, rows = await run_in_threadpool(
        _run, [(sql.LIST_OWNER, {"user_id": user}), (page, params)]
    )
    change_seq, total, _completed = owners[0] if owners else (0, 0, 0)
    digest = hashlib.blake2b(repr((request.url.path, cursor, limit)).encode(), digest_size=8)
    headers = HEADERS | {
        "X-Total-Count": str(total),
        "ETag": f'W/"{change_seq}-{digest.hexdigest()}"',
    }
    if len(rows) > limit:
        rows = rows[:limit]
        query = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
        cursor = _encode_cursor(rows[-1][8], rows[-1][0])
        query.append(("cursor", cursor))
        headers["Link"] = f'<{request.url.path}?{urlencode(query)}>; rel="next"'
    return JSONResponse([_task(row) for row in rows], headers=headers)


async def get_task(request: Request) -> Response:
    user = _user(request)
    if user is None:
        return UNAUTHORIZED
    params = {"id": request.path_params["task_id"], "user_id": user}
    (rows,) = await run_in_threadpool(_run, [(sql.GET, params)])
    return JSONResponse(_task(rows[0]), headers=HEADERS | _etag(rows[0])) if rows else NOT_FOUND


async def create_task(request: Request) -> Response:
    user = _user(request)
    if user is None:
        return UNAUTHORIZED
    body = json.loads(await request.body())
    now = dt.datetime.now(dt.UTC)
    completed = bool(body.get("completed", False))
    due = body.get("due_date")
    task = {
        "user_id": user,
        "title": body["title"].strip(),
        "description": body.get("description"),
        "completed": completed,
        "priority": PRIORITY_RANKS[body.get("priority", "medium")],
        "tags": json.dumps(body.get("tags", [])),
        "due_date": dt.datetime.fromisoformat(due.upper()) if due else None,
        "created_at": now,
        "updated_at": now,
        "completed_at": now if completed else None,
        # The benchmark's creates are neither recurring nor reminded.
        "recurrence": None,
        "timezone": "UTC",
        "series_id": None,
        "next_task_id": None,
        "remind_before": None,
        "remind_at": None,
    }
    row = await run_in_threadpool(_create, task | {"quota": SETTINGS.task_quota})
    if row is None:
        return Response(status_code=409)
    headers = HEADERS | _etag(row) | {"Location": f"{request.url.path.rstrip('/')}/{row[0]}"}
    return JSONResponse(_task(row), status_code=201, headers=headers)


async def update_task(request: Request) -> Response:
    user = _user(request)
    if user is None:
        return UNAUTHORIZED
    body = json.loads(await request.body())
    fields = {name: body[name] for name in sql.UPDATABLE if name in body}
    if "title" in fields:
        fields["title"] = fields["title"].strip()
    if "priority" in fields:
        fields["priority"] = PRIORITY_RANKS[fields["priority"]]
    if "tags" in fields:
        fields["tags"] = json.dumps(fields["tags"])
    values = {name: f"%({name})s::JSONB" if name == "tags" else f"%({name})s" for name in fields}
    assignments = "".join(f"{name}={value}, " for name, value in values.items())
    changes = " OR ".join(
        f"tasks.{name} IS DISTINCT FROM {value}" for name, value in values.items()
    )
    # As SQLAlchemy renders the service's: no field is `false`, one bare, more in parentheses.
    shape = {"assignments": assignments, "changes": f"({changes})" if len(fields) > 1 else changes}
    shape["changes"] = shape["changes"] or "false"
    params = fields | {
        "id": request.path_params["task_id"],
        "user_id": user,
        "now": dt.datetime.now(dt.UTC),
    }
    statements = sql.UPDATE.format(**shape), sql.UPDATE_AGAIN.format(**shape)
    row = await run_in_threadpool(_write, *statements, params)
    return JSONResponse(_task(row), headers=HEADERS | _etag(row)) if row else NOT_FOUND


async def toggle_task(request: Request) -> Response:
    user = _user(request)
    if user is None:
        return UNAUTHORIZED
    params = {"id": request.path_params["task_id"], "user_id": user, "now": dt.datetime.now(dt.UTC)}
    row = await run_in_threadpool(_write, sql.TOGGLE, sql.TOGGLE_AGAIN, params, toggle=True)
    return JSONResponse(_task(row), headers=HEADERS | _etag(row)) if row else NOT_FOUND


async def health(_request: Request) -> Response:
    return JSONResponse({"status": "ok"})


app = Starlette(
    routes=[
        Route("/api/health", health),
        Route("/api/tasks", list_tasks, methods=["GET"]),
        Route("/api/tasks", create_task, methods=["POST"]),
        Route("/api/tasks/{task_id:int}", get_task, methods=["GET"]),
        Route("/api/tasks/{task_id:int}", update_task, methods=["PATCH"]),
        Route("/api/tasks/{task_id:int}/complete", toggle_task, methods=["POST"]),
    ],
    lifespan=lifespan,
)


def main() -> None:
    """Serve the floor with the options `todo-api serve` gives uvicorn."""
    import argparse

    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m tests.perf.floor")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "tests.perf.floor:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        proxy_headers=True,
        timeout_graceful_shutdown=30,
    )


if __name__ == "__main__":
    main()
