"""What the service writes to its logs: one format for every line, and no credential in any
line, however it came (in a header, the query or a body)."""

from __future__ import annotations

import copy
import logging
import re
from typing import Any
from urllib.parse import unquote

# Every log line, uvicorn's and the application's alike: `INFO:     uvicorn.error: Started ...`.
LOG_FORMAT = "%(levelprefix)s %(name)s: %(message)s"

# A bearer credential after its scheme, a JWT anywhere, and the value of any query or form
# parameter or field whose name says it holds a credential (`?access_token=...`,
# `"session_token": "..."`), quoted values whole.
CREDENTIAL = re.compile(
    r"(?i)(?P<scheme>\bbearer\s+)[^\s\"',;}]+"
    r"|eyJ[\w-]*\.[\w-]*\.[\w-]*"
    # The name's end only (`access_token` ends in `token`): a leading [\w-]* would make the
    # search quadratic in the line's length.
    r"|(?P<name>(?:token|ticket|secret|password|passwd|session|api[_-]?key)[\"']?\s*[:=]\s*)"
    r"(?:\"[^\"]*\"|'[^']*'|[^&\s\"',;}]+)"
)
REDACTED = "[redacted]"
# What a line must hold, lower-cased, for CREDENTIAL to have anything to find: most lines hold
# none of these, and substring tests cost far less than the search.
CLUES = ("bearer", "eyj", "token", "ticket", "secret", "passw", "session", "key")


def redact(text: str) -> str:
    if "%" in text:
        # A name or value sent percent-encoded (`to%6Ben=`) is read as the server reads it.
        decoded = unquote(text)
        if decoded != text and _has_clue(decoded):
            text = decoded
    if not _has_clue(text):
        return text
    return CREDENTIAL.sub(_replacement, text)


def _has_clue(text: str) -> bool:
    lowered = text.lower()
    return any(clue in lowered for clue in CLUES)


def _replacement(match: re.Match[str]) -> str:
    return (match["scheme"] or match["name"] or "") + REDACTED


class RedactCredentials(logging.Filter):
    """A handler's filter that scrubs each record: its message, its arguments and any
    traceback. Arguments that are all text and numbers keep their shape (uvicorn's access
    formatter unpacks them); any others are formatted into the message first."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and all(isinstance(a, str | int | float) for a in args):
            record.msg = redact(str(record.msg))
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in args)
        else:
            record.msg, record.args = redact(record.getMessage()), ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redact(record.exc_text)
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging, with the application's own loggers beside it, all in one format,
    and credentials scrubbed from every line. The CLI applies it for every command, and uvicorn
    again in each worker process it starts."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactCredentials}}
    formatter = {"()": "uvicorn.logging.DefaultFormatter", "fmt": LOG_FORMAT}
    # uvicorn looks up both of its formatters by name (to colour them), so both names stay.
    config["formatters"] = {"default": formatter, "access": dict(formatter)}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    config["root"] = {"handlers": ["default"], "level": level}
    return config
