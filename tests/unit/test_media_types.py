"""How a request's Content-Type and Content-Encoding are read (todo_api/web/media_types.py)."""

from __future__ import annotations

import pytest

from todo_api.web.media_types import content_codings, media_type


@pytest.mark.parametrize(
    ("content_type", "expected"),
    [
        ("application/json", "application/json"),
        ("APPLICATION/JSON", "application/json"),
        ("Application/Json; Charset=UTF-8", "application/json"),
        ("  application/JSON ;charset=latin-1", "application/json"),
        ("Text/Plain", "text/plain"),
        ("", ""),
    ],
)
def test_a_media_type_is_lower_case_without_parameters(content_type: str, expected: str) -> None:
    assert media_type(content_type) == expected


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ([], []),
        (["identity"], []),
        (["Identity", " "], []),
        (["gzip"], ["gzip"]),
        (["GZIP"], ["gzip"]),
        (["identity, gzip"], ["gzip"]),
        (["deflate", "br ,identity"], ["deflate", "br"]),
    ],
)
def test_content_codings_are_those_other_than_identity(
    fields: list[str], expected: list[str]
) -> None:
    assert content_codings(fields) == expected
