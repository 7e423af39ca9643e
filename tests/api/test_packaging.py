"""A non-editable install (a wheel) carries everything the service reads at run time."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

from tests.conftest import SECRET

ROOT = Path(__file__).resolve().parents[2]


def test_a_wheel_serves_its_contract_and_migrates(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(ROOT), "-w", tmp_path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    [wheel] = tmp_path.glob("todo_api-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "openapi/openapi.yaml" in names
    assert "storage/migrations/script.py.mako" in names
    installed = tmp_path / "installed"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", installed, wheel],
        check=True,
        timeout=300,
    )
    # Run from elsewhere, with the installed copy first on the path: no file of the checkout.
    program = f"""
import openapi, todo_api
from starlette.testclient import TestClient
from todo_api.app import create_app
from todo_api.settings import Settings
assert openapi.__file__.startswith({str(installed)!r}), openapi.__file__
assert todo_api.__file__.startswith({str(installed)!r}), todo_api.__file__
app = create_app(Settings(database_url="sqlite:///{tmp_path / "todo.db"}", auth_secret={SECRET!r}))
with TestClient(app) as client:
    assert client.get("/api/health").status_code == 200
    assert client.get("/api/openapi.yaml").content == (
        __import__("pathlib").Path(openapi.__file__).parent / "openapi.yaml"
    ).read_bytes()
"""
    result = subprocess.run(
        [sys.executable, "-c", program],
        cwd=tmp_path,
        env={"PYTHONPATH": str(installed), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
