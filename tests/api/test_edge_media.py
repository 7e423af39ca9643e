"""Bodies read one way only, replayed against the server `todo-api serve` starts: a media type
in any case is JSON and validated (it was a 500 that skipped validation), any other type and
any content coding are 415, and a body naming one member twice is 422."""

from __future__ import annotations

import gzip
import itertools
import json
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2 as httpx
import pytest
from starlette.testclient import TestClient

from tests.api.test_live_updates import server_env
from tests.conftest import bearer, make_token
from tests.network import serving

USER = bearer(make_token("media-types"))
CASED = ["APPLICATION/JSON", "Application/Json; Charset=UTF-8"]
_names = itertools.count()


@dataclass(frozen=True)
class Server:
    base: str
    log: Path

    def request(
        self, method: str, path: str, body: bytes, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        return httpx.request(
            method,
            f"{self.base}{path}",
            content=body,
            headers={**USER, **(headers or {})},
            timeout=10,
        )

    def create(self, **fields: Any) -> dict[str, Any]:
        response = httpx.post(f"{self.base}/tasks", json=fields, headers=USER, timeout=10)
        assert response.status_code == 201, response.text
        task: dict[str, Any] = response.json()
        return task

    def etag(self, path: str) -> str:
        return httpx.get(f"{self.base}{path}", headers=USER, timeout=10).headers["ETag"]

    def count(self) -> int:
        response = httpx.get(f"{self.base}/tasks", headers=USER, timeout=10)
        return int(response.headers["X-Total-Count"])

    def log_is_clean(self) -> None:
        text = self.log.read_text()
        assert "Traceback" not in text
        assert "Skipping validation" not in text


@pytest.fixture(scope="module")
def server(
    database_url: str, app_client: TestClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One `todo-api serve` on the suite's (migrated) database, logging at DEBUG."""
    tmp_path = tmp_path_factory.mktemp("media")
    env = server_env(database_url, LOG_LEVEL="DEBUG")
    log = tmp_path / "serve.log"
    with log.open("w") as out, serving(env, tmp_path, out, subprocess.STDOUT) as (base, _):
        yield Server(base, log)


@dataclass(frozen=True)
class Write:
    """One write operation: where it goes, a valid body and its effect, an invalid body and
    the pointer its 422 names."""

    method: str
    path: Callable[[Server], str]
    valid: Callable[[str], dict[str, Any]]
    check: Callable[[dict[str, Any], str], bool]
    invalid: dict[str, Any]
    pointer: str
    status: int = 200


def _task(server: Server) -> str:
    return f"/tasks/{server.create(title='media')['id']}"


def _tag(server: Server) -> str:
    tag = f"m{next(_names)}"
    server.create(title="tagged", tags=[tag])
    return f"/tags/{tag}/rename"


WRITES = {
    "create": Write(
        "POST",
        lambda _: "/tasks",
        lambda name: {"title": name},
        lambda task, name: task["title"] == name,
        {"title": "x", "colour": "red"},
        "#/colour",
        201,
    ),
    "patch": Write(
        "PATCH",
        _task,
        lambda name: {"title": name},
        lambda task, name: task["title"] == name,
        {"title": ""},
        "#/title",
    ),
    "put": Write(
        "PUT",
        _task,
        lambda name: {"title": name},
        lambda task, name: task["title"] == name,
        {"priority": "urgent"},
        "#/priority",
    ),
    "patch complete": Write(
        "PATCH",
        lambda server: _task(server) + "/complete",
        lambda _: {"completed": True},
        lambda task, _: task["completed"] is True,
        {"completed": "yes"},
        "#/completed",
    ),
    "post complete": Write(
        "POST",
        lambda server: _task(server) + "/complete",
        lambda _: {"completed": True},
        lambda task, _: task["completed"] is True,
        {"completed": 1},
        "#/completed",
    ),
    "rename tag": Write(
        "POST",
        _tag,
        lambda name: {"to": name},
        lambda tag, name: tag["tag"] == name,
        {"to": ""},
        "#/to",
    ),
}


def _pointers(response: httpx.Response) -> list[str]:
    assert response.headers["content-type"] == "application/problem+json", response.text
    return [error.get("pointer") for error in response.json().get("errors", [])]


@pytest.mark.parametrize("content_type", CASED)
@pytest.mark.parametrize("operation", WRITES)
def test_a_media_type_in_any_case_is_json_and_validated(
    server: Server, operation: str, content_type: str
) -> None:
    write = WRITES[operation]
    headers = {"Content-Type": content_type}
    path = write.path(server)
    refused = server.request(write.method, path, json.dumps(write.invalid).encode(), headers)
    assert refused.status_code == 422, refused.text
    assert write.pointer in _pointers(refused)

    name = f"n{next(_names)}"
    answered = server.request(write.method, path, json.dumps(write.valid(name)).encode(), headers)
    assert answered.status_code == write.status, answered.text
    assert answered.headers["content-type"] == "application/json"
    assert write.check(answered.json(), name)
    server.log_is_clean()


@pytest.mark.parametrize("content_type", ["text/plain", "TEXT/PLAIN", "application/xml"])
@pytest.mark.parametrize("operation", WRITES)
def test_any_other_media_type_is_415(server: Server, operation: str, content_type: str) -> None:
    write = WRITES[operation]
    body = json.dumps(write.valid("plain")).encode()
    response = server.request(
        write.method, write.path(server), body, {"Content-Type": content_type}
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    server.log_is_clean()


@pytest.mark.parametrize("coding", ["gzip", "GZIP", "identity, gzip", "br"])
@pytest.mark.parametrize("compressed", [True, False], ids=["encoded", "sent-plain"])
def test_a_content_coding_is_415_with_what_is_accepted(
    server: Server, coding: str, compressed: bool
) -> None:
    before = server.count()
    body = json.dumps({"title": "coded"}).encode()
    response = server.request(
        "POST",
        "/tasks",
        gzip.compress(body) if compressed else body,
        {"Content-Type": "application/json", "Content-Encoding": coding},
    )
    assert response.status_code == 415, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["accept-encoding"] == "identity"
    assert response.headers["connection"] == "close"
    assert server.count() == before
    server.log_is_clean()


def test_identity_is_no_content_coding(server: Server) -> None:
    body = json.dumps({"title": "as is"}).encode()
    headers = {"Content-Type": "application/json", "Content-Encoding": "Identity"}
    response = server.request("POST", "/tasks", body, headers)
    assert response.status_code == 201, response.text


DUPLICATED = [
    ("POST", "/tasks", b'{"title": "first", "title": "second"}', "#/title"),
    ("POST", "/tasks", b'{"title": "a", "x": {"y": [{"k": 1, "k": 2}]}}', "#/x/y/0/k"),
    ("PATCH", None, b'{"tags": ["a"], "title": "t", "tags": []}', "#/tags"),
    ("PUT", None, b'{"description": "d", "description": null}', "#/description"),
    ("PATCH", "/complete", b'{"completed": false, "completed": true}', "#/completed"),
]


@pytest.mark.parametrize("content_type", ["application/json", "APPLICATION/JSON"])
@pytest.mark.parametrize(("method", "path", "body", "pointer"), DUPLICATED)
def test_a_member_named_twice_is_422_naming_it(
    server: Server, method: str, path: str | None, body: bytes, pointer: str, content_type: str
) -> None:
    task = None
    if path is None or path.startswith("/complete"):
        task = f"/tasks/{server.create(title='dup')['id']}"
        path = task + (path or "")
    version = server.etag(task) if task else None
    before = server.count()
    response = server.request(method, path, body, {"Content-Type": content_type})
    assert response.status_code == 422, response.text
    assert _pointers(response) == [pointer]
    assert "more than once" in response.json()["detail"]
    assert server.count() == before
    if task:
        assert server.etag(task) == version
    server.log_is_clean()


def test_a_tag_renamed_with_a_member_named_twice_is_422(server: Server) -> None:
    path = _tag(server)
    response = server.request(
        "POST", path, b'{"to": "one", "to": "two"}', {"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
    assert _pointers(response) == ["#/to"]


def test_a_body_is_read_as_utf8_whatever_its_charset_says(server: Server) -> None:
    """JSON is UTF-8 (RFC 8259 section 8.1): before, the validator read such a body in the
    charset named and the handler read it again as UTF-8, two readings of one body."""
    headers = {"Content-Type": "application/json;charset=latin-1"}
    utf8 = server.request("POST", "/tasks", '{"title": "café"}'.encode(), headers)
    assert utf8.status_code == 201, utf8.text
    assert utf8.json()["title"] == "café"
    latin1 = server.request("POST", "/tasks", '{"title": "café"}'.encode("latin-1"), headers)
    assert latin1.status_code == 400, latin1.text
    assert latin1.headers["content-type"] == "application/problem+json"
    server.log_is_clean()
