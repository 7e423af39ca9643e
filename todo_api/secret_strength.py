"""What makes a signing secret guessable: the rules `serve` and `token` refuse a
BETTER_AUTH_SECRET (or METRICS_TOKEN) by, since anyone who can guess it can sign a token for
any user."""

from __future__ import annotations

# RFC 7518 section 3.2: an HS256 key must have at least as many bits as the hash.
MIN_SECRET_LENGTH = 32
# Every value of BETTER_AUTH_SECRET this project ships as an example (.env.example);
# tests/api/test_secrets.py keeps this in step with the files.
SHIPPED_SECRETS = frozenset({"replace-with-at-least-32-random-characters"})
# Words that mark a secret a person made up rather than generated.
WEAK_WORDS = (
    "secret",
    "password",
    "passwd",
    "changeme",
    "change-me",
    "replace",
    "example",
    "placeholder",
    "default",
    "qwerty",
    "letmein",
    "admin",
)
MIN_DISTINCT_CHARACTERS = 6


def weak_secret(secret: str) -> str | None:
    """Why `secret` must not sign tokens, or None: anyone who can guess it can sign a token
    for any user."""
    if secret in SHIPPED_SECRETS:
        return "is the example value shipped in .env.example"
    if len(secret.encode()) < MIN_SECRET_LENGTH:
        return f"is shorter than {MIN_SECRET_LENGTH} bytes"
    # A string that is a shorter string repeated occurs in itself doubled, off its start.
    if len(set(secret)) < MIN_DISTINCT_CHARACTERS or secret in (secret + secret)[1:-1]:
        return "is one character or pattern repeated"
    lowered = secret.lower()
    word = next((w for w in WEAK_WORDS if w in lowered), None)
    if word is not None:
        return f"contains the word {word!r}"
    return None
