"""A reference backend for the benchmark: FastAPI + SQLModel, written as such backends usually are.

The benchmark compares our service with more than its floor (tests/perf/floor.py): also with
the backend a hackathon team would typically write for the same frontend. So this is written
plainly, on purpose not optimised: sync (`def`) endpoints run in FastAPI's thread pool, a
`get_session` dependency that yields an SQLModel `Session` per request, an engine made at import
with `create_engine`'s default pool, PyJWT checking the HS256 token on every request, and a
separate `count(*)` query for each list's total. It is never shipped, and it implements only
what the benchmark asks for: health, list, get one and create.

It maps the service's own `tasks` table (storage/models.py, storage/migrations/), so it reads
the same seeded rows; it leaves the service's `task_owners` table alone.

    DATABASE_URL=... BETTER_AUTH_SECRET=... python -m tests.perf.reference --port 8002
"""

from __future__ import annotations

import argparse
import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

import jwt
import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Response, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import JSON, BigInteger, Column, DateTime
from sqlmodel import Field, Session, SQLModel, create_engine, func, select

Priority = Literal["low", "medium", "high"]
PRIORITY_TO_RANK: dict[str, int] = {"low": 1, "medium": 2, "high": 3}
RANK_TO_PRIORITY: dict[int, Priority] = {1: "low", 2: "medium", 3: "high"}


class Task(SQLModel, table=True):
    __tablename__ = "tasks"
    # `python -m tests.perf.reference` runs this module as __main__, then uvicorn imports it
    # again by name (in each worker, too): the second Task must not fail on the first's table.
    __table_args__ = {"extend_existing": True}

    id: int | None = Field(default=None, sa_column=Column(BigInteger, primary_key=True))
    user_id: str = Field(max_length=255)
    title: str = Field(max_length=200)
    description: str | None = None
    completed: bool = False
    priority: int = 2
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    due_date: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    created_at: datetime = Field(sa_type=DateTime(timezone=True))
    updated_at: datetime = Field(sa_type=DateTime(timezone=True))
    completed_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))
    version: int = 1
    # The service's change sequence number; unique per user (index ix_tasks_user_seq).
    seq: int = Field(default=0, sa_type=BigInteger)
    deleted_at: datetime | None = Field(default=None, sa_type=DateTime(timezone=True))


class TaskCreate(SQLModel):
    title: str
    description: str | None = None
    priority: Priority = "medium"
    tags: list[str] = []


class TaskRead(SQLModel):
    id: int
    user_id: str
    title: str
    description: str | None
    completed: bool
    priority: Priority
    tags: list[str]
    due_date: datetime | None
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None


def to_read(task: Task) -> TaskRead:
    data: dict[str, Any] = task.model_dump()
    data["priority"] = RANK_TO_PRIORITY[task.priority]
    return TaskRead(**data)


# psycopg2, the service's driver: SQLAlchemy 2.1 reads a bare postgresql:// as psycopg (3).
DATABASE_URL = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg2://", 1)
engine = create_engine(DATABASE_URL)


def get_session() -> Iterator[Session]:
    with Session(engine) as session:
        yield session


bearer = HTTPBearer()


def get_current_user(
    credentials: Annotated[HTTPAuthorizationCredentials, Depends(bearer)],
) -> str:
    try:
        payload = jwt.decode(
            credentials.credentials,
            os.environ["BETTER_AUTH_SECRET"],
            algorithms=["HS256"],
            # The service's issuer and audience when it is configured with them (tokens from
            # `mint_token(..., Expected())`, as the benchmark's, carry neither).
            issuer=os.environ.get("JWT_ISSUER") or None,
            audience=os.environ.get("JWT_AUDIENCE") or None,
        )
    except jwt.PyJWTError:
        raise HTTPException(
            status_code=status.HTTP_401_UNAUTHORIZED, detail="Invalid token"
        ) from None
    user_id = payload.get("sub")
    if not isinstance(user_id, str) or not user_id:
        raise HTTPException(status_code=status.HTTP_401_UNAUTHORIZED, detail="Invalid token")
    return user_id


SessionDep = Annotated[Session, Depends(get_session)]
UserDep = Annotated[str, Depends(get_current_user)]

app = FastAPI(title="Todo API (reference: FastAPI + SQLModel)")


# /api/health too: the benchmark waits on `{base}/api/health`, as for the service and the floor.
@app.get("/health")
@app.get("/api/health")
def health() -> dict[str, str]:
    return {"status": "ok"}


@app.get("/api/tasks", response_model=list[TaskRead])
def list_tasks(
    session: SessionDep,
    user_id: UserDep,
    response: Response,
    limit: int = 50,
    offset: int = 0,
) -> list[TaskRead]:
    where = (Task.user_id == user_id, Task.deleted_at.is_(None))  # type: ignore[union-attr]
    total = session.exec(select(func.count()).select_from(Task).where(*where)).one()
    response.headers["X-Total-Count"] = str(total)
    statement = (
        select(Task)
        .where(*where)
        .order_by(Task.created_at.desc(), Task.id.desc())  # type: ignore[attr-defined, union-attr]
        .offset(offset)
        .limit(limit)
    )
    return [to_read(task) for task in session.exec(statement).all()]


@app.get("/api/tasks/{task_id}", response_model=TaskRead)
def get_task(task_id: int, session: SessionDep, user_id: UserDep) -> TaskRead:
    task = session.exec(
        select(Task).where(
            Task.id == task_id,
            Task.user_id == user_id,
            Task.deleted_at.is_(None),  # type: ignore[union-attr]
        )
    ).first()
    if task is None:
        raise HTTPException(status_code=status.HTTP_404_NOT_FOUND, detail="Task not found")
    return to_read(task)


@app.post("/api/tasks", response_model=TaskRead, status_code=status.HTTP_201_CREATED)
def create_task(body: TaskCreate, session: SessionDep, user_id: UserDep) -> TaskRead:
    now = datetime.now(UTC)
    task = Task(
        user_id=user_id,
        title=body.title,
        description=body.description,
        completed=False,
        priority=PRIORITY_TO_RANK[body.priority],
        tags=body.tags,
        created_at=now,
        updated_at=now,
        version=1,
        # Any value unique per user satisfies ix_tasks_user_seq; the service's are positive,
        # so a negative one never collides with them (the service's feed does not read these).
        seq=-1 - secrets.randbits(62),
    )
    session.add(task)
    session.commit()
    session.refresh(task)
    return to_read(task)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.reference")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    uvicorn.run(
        "tests.perf.reference:app",
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="warning",
    )


if __name__ == "__main__":
    main()
