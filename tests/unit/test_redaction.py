"""Credentials never reach a log line, whatever the line is made of."""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest

from tests.conftest import make_token
from todo_api.logs import RedactCredentials

TOKEN = make_token("someone")


@pytest.fixture
def log() -> Iterator[tuple[logging.Logger, io.StringIO]]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactCredentials())
    logger = logging.getLogger("test_redaction")
    logger.addHandler(handler)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_access_log_lines_keep_their_shape(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    path = f"/api/tasks?status=all&access_token={TOKEN}&to%6Ben=opaque-one"
    logger.warning('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", path, "1.1", 401)
    line = stream.getvalue()
    assert line.startswith('127.0.0.1:5000 - "GET /api/tasks?status=all&access_token=[redacted]')
    assert line.rstrip().endswith('HTTP/1.1" 401')
    assert TOKEN not in line
    assert "opaque-one" not in line


def test_tracebacks_and_objects_are_scrubbed(log: tuple[logging.Logger, io.StringIO]) -> None:
    logger, stream = log
    try:
        raise ValueError(f"Bearer {TOKEN}")
    except ValueError as exc:
        logger.exception("failed: %r", exc)
    logger.warning("body %s", {"password": "correct horse battery", "session": "s3ss10n"})
    text = stream.getvalue()
    assert "Traceback" in text
    assert TOKEN not in text
    assert TOKEN.rsplit(".", 1)[-1] not in text
    for secret in ("correct", "horse", "s3ss10n"):
        assert secret not in text
