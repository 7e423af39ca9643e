"""A body that names a member twice, at any depth, is 422 naming each (I-JSON, RFC 7493)."""

from __future__ import annotations

import pytest
from connexion.exceptions import BadRequestProblem
from starlette.datastructures import Headers

from todo_api.web.problems import ValidationProblem
from todo_api.web.validators import parse_body

JSON = Headers({"content-type": "application/json"})


def _pointers(raw: bytes) -> list[str]:
    with pytest.raises(ValidationProblem) as raised:
        parse_body(raw, JSON, "utf-8")
    assert raised.value.status == 422
    return [error["pointer"] for error in raised.value.ext["errors"]]


@pytest.mark.parametrize(
    ("raw", "pointers"),
    [
        (b'{"title": "a", "title": "b"}', ["#/title"]),
        (b'{"title": "a", "title": "a"}', ["#/title"]),
        (b'{"a": 1, "b": 2, "a": 3, "b": 4, "a": 5}', ["#/a", "#/b"]),
        (b'{"x": {"y": [{"k": 1}, {"k": 1, "k": 2}]}}', ["#/x/y/1/k"]),
        (b'[{"a/b": 1, "a/b": 2}]', ["#/0/a~1b"]),
        (b'{"t": 1, "t": 2, "o": {"t": 1, "t": 2}}', ["#/o/t", "#/t"]),
    ],
)
def test_each_member_named_twice_is_named(raw: bytes, pointers: list[str]) -> None:
    assert sorted(_pointers(raw)) == sorted(pointers)


def test_the_same_name_in_two_objects_is_no_duplicate() -> None:
    body = parse_body(b'{"a": {"k": 1}, "b": {"k": 2}, "k": [{"k": 3}]}', JSON, "utf-8")
    assert body == {"a": {"k": 1}, "b": {"k": 2}, "k": [{"k": 3}]}


def test_a_duplicate_in_a_body_nested_too_deeply_is_a_400() -> None:
    raw = b'[{"a": 1, "a": 2}, ' + b"[" * 100_000 + b"]" * 100_000 + b"]"
    with pytest.raises(BadRequestProblem):
        parse_body(raw, JSON, "utf-8")
