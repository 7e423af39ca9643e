""".ci/audit.py: the audit runs where its service answers; elsewhere a skip, never a pass."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / ".ci" / "audit.py"


@pytest.fixture
def audit() -> ModuleType:
    spec = importlib.util.spec_from_file_location("ci_audit", SCRIPT)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Service:
    """A stand-in for PyPI's JSON API: each request is answered with `status` and `body`."""

    def __init__(self) -> None:
        self.status = 200
        self.body: Any = {"info": {}, "vulnerabilities": []}
        self.paths: list[str] = []
        self.answer: Callable[[str], tuple[int, Any]] = lambda _: (self.status, self.body)
        service = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                service.paths.append(self.path)
                status, body = service.answer(self.path)
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def log_message(self, *_: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}" + "/pypi/{name}/{version}/json"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def service() -> Iterator[Service]:
    stand_in = Service()
    yield stand_in
    stand_in.server.shutdown()
    stand_in.server.server_close()


@pytest.fixture
def audits(monkeypatch: pytest.MonkeyPatch, audit: ModuleType) -> list[list[str]]:
    """The pip-audit commands that main() would run, each answered with exit code 0."""
    commands: list[list[str]] = []

    def run(command: list[str], **_: Any) -> subprocess.CompletedProcess[str]:
        commands.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(audit.subprocess, "run", run)
    return commands


def test_a_service_that_answers_for_the_pinned_releases_runs_the_strict_audit(
    audit: ModuleType, service: Service, audits: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    audit.SERVICE = service.url
    assert audit.main() == 0
    name, version = audit.PIN.findall(audit.LOCK.read_text())[0]
    assert f"/pypi/{name}/{version}/json" in service.paths
    [command] = audits
    assert command[1:5] == ["-m", "pip_audit", "--strict", "--disable-pip"]
    assert command[-2:] == ["-r", str(audit.LOCK)]
    assert "dependency audit: ok" in capsys.readouterr().out


def test_every_release_not_found_is_a_skip_not_a_pass(
    audit: ModuleType, service: Service, audits: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    audit.SERVICE = service.url
    service.status, service.body = 404, {"message": "Not Found"}
    assert audit.main() == 0
    assert audits == []
    out = capsys.readouterr().out
    assert "dependency audit SKIPPED, it did not run" in out
    assert "answered 404" in out
    assert "ok" not in out


def test_an_answer_without_vulnerabilities_is_not_the_service(
    audit: ModuleType, service: Service, audits: list[list[str]]
) -> None:
    audit.SERVICE = service.url
    service.body = {"info": {}}
    assert audit.unreachable_because() is not None
    assert audit.main() == 0
    assert audits == []


def test_a_service_that_cannot_be_reached_is_a_skip(
    audit: ModuleType, service: Service, audits: list[list[str]], capsys: pytest.CaptureFixture[str]
) -> None:
    audit.SERVICE = service.url
    service.server.shutdown()
    service.server.server_close()
    assert audit.main() == 0
    assert audits == []
    assert "cannot be reached" in capsys.readouterr().out


def test_a_failed_audit_fails_the_run(
    audit: ModuleType, service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    audit.SERVICE = service.url
    monkeypatch.setattr(
        audit.subprocess, "run", lambda command, **_: subprocess.CompletedProcess(command, 1)
    )
    assert audit.main() == 1


def test_one_release_not_found_among_known_ones_is_the_audits_to_fail(
    audit: ModuleType, service: Service, audits: list[list[str]]
) -> None:
    """A service that knows some of the lock's releases is reachable: the strict audit runs
    (and fails on the one it cannot look up) rather than being skipped."""
    audit.SERVICE = service.url
    first, _ = audit.PIN.findall(audit.LOCK.read_text())[0]
    known = service.body

    def answer(path: str) -> tuple[int, Any]:
        return (404, {"message": "Not Found"}) if f"/{first}/" in path else (200, known)

    service.answer = answer
    assert audit.unreachable_because() is None
    assert audit.main() == 0
    assert len(audits) == 1
