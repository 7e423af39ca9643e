"""No credential in any log line, however it came: in a header, the query or a body."""

from __future__ import annotations

import logging
import re

# A bearer credential after its scheme, a JWT anywhere, and the value of any query or form
# parameter or field whose name says it holds a credential (`?access_token=...`,
# `"session_token": "..."`).
CREDENTIAL = re.compile(
    r"(?i)(?P<scheme>\bbearer\s+)[^\s\"',;}]+"
    r"|eyJ[\w-]*\.[\w-]*\.[\w-]*"
    r"|(?P<name>[\w-]*(?:token|ticket|secret|password|passwd|session|api[_-]?key)[\"']?\s*[:=]\s*[\"']?)"
    r"[^&\s\"',;}]+"
)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    return CREDENTIAL.sub(_replacement, text)


def _replacement(match: re.Match[str]) -> str:
    return (match["scheme"] or match["name"] or "") + REDACTED


class RedactCredentials(logging.Filter):
    """A handler's filter that scrubs each record's message and arguments, keeping their shape
    (uvicorn's access formatter unpacks the arguments)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        elif isinstance(record.args, dict):
            args = record.args.items()
            record.args = {k: redact(v) if isinstance(v, str) else v for k, v in args}
        return True
