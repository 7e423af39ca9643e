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
    # The name's end only (`access_token` ends in `token`): a leading [\w-]* would make the
    # search quadratic in the line's length.
    r"|(?P<name>(?:token|ticket|secret|password|passwd|session|api[_-]?key)[\"']?\s*[:=]\s*[\"']?)"
    r"[^&\s\"',;}]+"
)
REDACTED = "[redacted]"


# What a line must hold, lower-cased, for CREDENTIAL to have anything to find: most lines hold
# none of these, and substring tests cost far less than the search.
CLUES = ("bearer", "eyj", "token", "ticket", "secret", "passw", "session", "key")


def redact(text: str) -> str:
    lowered = text.lower()
    if not any(clue in lowered for clue in CLUES):
        return text
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
