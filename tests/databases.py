"""Databases of their own for a test run."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
from sqlalchemy.engine import make_url


@contextmanager
def fresh_postgres(url: str) -> Iterator[str]:
    """A database of its own for this run, so leftovers of other runs cannot matter."""
    server = make_url(url)
    name = f"todo_test_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(server.set(drivername="postgresql").render_as_string(False))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute(f'CREATE DATABASE "{name}"')
        # A server whose default time zone is not UTC, as a hosted one may well be.
        cursor.execute(f"ALTER DATABASE \"{name}\" SET timezone TO 'Asia/Tokyo'")
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
