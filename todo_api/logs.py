"""What the service writes to its logs: one shape for every line (a JSON object, or a
readable line with `LOG_FORMAT=text`), the request each line belongs to, and no credential in
any line, however it came (in a header, the query or a body)."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

# Every text line, uvicorn's and the application's alike: `INFO:     uvicorn.error: Started ...`.
LOG_FORMAT = "%(levelprefix)s %(name)s: %(message)s"
LOG_FORMATS = ("json", "text")
# The one line each request writes when its answer is done.
ACCESS_LOGGER = "todo_api.access"


@dataclass
class RequestContext:
    """What the lines a request causes say about it; the outermost middleware starts one per
    request, the bearer check names the user, and the error handlers the error."""

    request_id: str
    user: str | None = None
    error: str | None = None


CURRENT_REQUEST: ContextVar[RequestContext | None] = ContextVar("current_request", default=None)


def current_request_id() -> str | None:
    context = CURRENT_REQUEST.get()
    return context.request_id if context is not None else None


def note_user(subject: str) -> None:
    context = CURRENT_REQUEST.get()
    if context is not None:
        context.user = subject


def note_error(kind: str) -> None:
    context = CURRENT_REQUEST.get()
    if context is not None:
        context.error = kind


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
        if getattr(record, "scrubbed", False):
            return True
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


# uvicorn logs its start and stop as `uvicorn.error`, which names no error.
DEFAULT_EVENTS = {"uvicorn.error": "uvicorn"}


class JsonLines(logging.Formatter):
    """One JSON object a line: `ts`, `level`, `event` (what happened: `request` for the access
    line, else the `event` a call names or the logger's name), `request_id` when a request
    caused it, then the access line's fields or the `message`."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "ts": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"
            ),
            "level": record.levelname,
            "event": getattr(record, "event", None) or DEFAULT_EVENTS.get(record.name, record.name),
        }
        fields: dict[str, Any] | None = getattr(record, "fields", None)
        if fields is not None:
            # The access line, scrubbed where it was made (log_request).
            line.update(fields)
            return json.dumps(line, ensure_ascii=False, default=str)
        line["logger"] = record.name
        line["message"] = record.getMessage()
        request_id = current_request_id()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            line["traceback"] = record.exc_text
        # Each value on its own, so that what is scrubbed can never break the JSON around it.
        scrubbed = {k: redact(v) if isinstance(v, str) else v for k, v in line.items()}
        return json.dumps(scrubbed, ensure_ascii=False, default=str)


MCP_SESSIONS_LOGGER = "mcp.server.streamable_http"
_access_log = logging.getLogger(ACCESS_LOGGER)
# Of the access line's fields, those a client's text can reach; the rest are the spec's route
# templates, a known method, numbers and the server's own words.
CLIENT_TEXT = ("user", "client", "request_id")


def _scrub(fields: dict[str, Any]) -> None:
    for name in CLIENT_TEXT:
        value = fields[name]
        if value is not None:
            fields[name] = redact(value)


def log_request(fields: dict[str, Any]) -> None:
    """The one line a request writes when its answer is done, `fields` as the JSON names them.

    Scrubbed here, once and only where a client's text can be, rather than in every handler's
    filter and again in the formatter: this line is written for every request."""
    if not _access_log.isEnabledFor(logging.INFO):
        return
    _scrub(fields)
    error = fields["error"]
    _access_log.info(
        "%s %s %s %.1fms %dB user=%s id=%s%s",
        fields["method"],
        fields["route"],
        fields["status"],
        fields["duration_ms"],
        fields["bytes"],
        fields["user"] or "-",
        fields["request_id"],
        f" error={error}" if error else "",
        extra={"event": "request", "fields": fields, "scrubbed": True},
    )


def log_tool_call(fields: dict[str, Any]) -> None:
    """The line an MCP tool call writes when its result is done (`event: tool_call`), beside
    its request's own line: the tool, its outcome, how long it took, the user and the request.
    The tool is one the server serves (`unknown` otherwise); the rest is scrubbed as above."""
    if not _access_log.isEnabledFor(logging.INFO):
        return
    _scrub(fields)
    error = fields["error"]
    _access_log.info(
        "tool %s %s %.1fms user=%s id=%s%s",
        fields["tool"],
        fields["outcome"],
        fields["duration_ms"],
        fields["user"] or "-",
        fields["request_id"],
        f" error={error}" if error else "",
        extra={"event": "tool_call", "fields": fields, "scrubbed": True},
    )


def log_config(level: str, log_format: str = "text") -> dict[str, Any]:
    """uvicorn's logging, with the application's own loggers beside it, all in one format,
    and credentials scrubbed from every line. The CLI applies it for every command, and uvicorn
    again in each worker process it starts.

    In JSON every line goes to stdout, for a platform's log collector; in text, the access
    lines go to stdout and the rest to stderr, as uvicorn's own would.
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["filters"] = {"redact": {"()": RedactCredentials}}
    if log_format == "json":
        formatter: dict[str, Any] = {"()": JsonLines}
        config["handlers"]["default"]["stream"] = "ext://sys.stdout"
    else:
        formatter = {"()": "uvicorn.logging.DefaultFormatter", "fmt": LOG_FORMAT}
    # uvicorn looks up both of its formatters by name (to colour them), so both names stay.
    config["formatters"] = {"default": formatter, "access": dict(formatter)}
    for handler in config["handlers"].values():
        handler["filters"] = ["redact"]
    # The access lines are the application's own (one per request, todo_api.web.observe);
    # uvicorn's are turned off where it runs (`access_log=False`).
    config["loggers"][ACCESS_LOGGER] = {"handlers": ["access"], "level": level, "propagate": False}
    config["root"] = {"handlers": ["default"], "level": level}
    # The MCP SDK notes each stateless request's session at INFO: a line per call that says
    # nothing the tool-call line does not.
    config["loggers"][MCP_SESSIONS_LOGGER] = {"level": _quieter(level, logging.WARNING)}
    return config


def _quieter(level: str, floor: int) -> str:
    return str(logging.getLevelName(max(logging.getLevelNamesMapping()[level], floor)))
