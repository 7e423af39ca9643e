"""The `todo-api` command: serve (as the README's first command runs it), token, db upgrade."""

from __future__ import annotations

import importlib.metadata
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
from collections.abc import Iterator
from pathlib import Path

import httpx2 as httpx
import jwt
import psycopg2
import pytest
from alembic.script import ScriptDirectory

import todo_api.about
import todo_api.cli
from storage.migrate import alembic_config
from tests.network import free_port, wait_until_healthy
from todo_api.contract import is_user_id
from todo_api.settings import ConfigError, Settings

ROOT = Path(__file__).resolve().parents[2]
TODO_API = str(Path(sys.executable).parent / "todo-api")
SECRET = secrets.token_urlsafe(32)


@pytest.fixture
def clean_env(tmp_path: Path) -> dict[str, str]:
    """The environment of a fresh shell in an empty directory: no secret, no database URL."""
    names = (
        "BETTER_AUTH_SECRET",
        "DATABASE_URL",
        "NEON_DB_URL",
        "JWT_ISSUER",
        "JWT_AUDIENCE",
        "PORT",
        "WEB_CONCURRENCY",
    )
    return {k: v for k, v in os.environ.items() if k not in names}


def run(args: list[str], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [TODO_API, *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def dev_server(
    tmp_path: Path, clean_env: dict[str, str]
) -> Iterator[tuple[str, str, subprocess.Popen[bytes]]]:
    port = free_port()
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [TODO_API, "serve", "--dev", "--port", str(port)],
        cwd=tmp_path,
        env=clean_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}/api"
    try:
        wait_until_healthy(base, process)
        output = (tmp_path / "serve.log").read_text()
        token = re.search(r"^(eyJ[\w-]+\.[\w-]+\.[\w-]+)$", output, re.MULTILINE)
        assert token, output
        yield base, token[1], process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=30)
        log.close()


def test_serve_dev_runs_on_sqlite_with_a_demo_token(
    dev_server: tuple[str, str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    base, token, _ = dev_server
    headers = {"Authorization": f"Bearer {token}"}
    created = httpx.post(f"{base}/tasks", json={"title": "from the CLI"}, headers=headers)
    assert created.status_code == 201
    assert created.json()["user_id"] == "demo-user"
    assert httpx.get(f"{base}/tasks", headers=headers).json() == [created.json()]
    assert httpx.get(f"{base}/docs/").status_code == 200
    assert httpx.get(f"{base}/tasks").status_code == 401
    log = (tmp_path / "serve.log").read_text()
    assert "WARNING" in log
    assert f"{base}/docs" in log
    # The address it says it serves on answers, itself: the API's index.
    served = re.search(r"serving on (\S+)", log)
    assert served, log
    index = httpx.get(served[1])
    assert index.status_code == 200
    assert index.json()["links"]["docs"] == "/api/docs/"
    with sqlite3.connect(tmp_path / "todo.db") as db:
        assert db.execute("SELECT title FROM tasks").fetchall() == [("from the CLI",)]


def test_sigterm_lets_a_request_in_flight_finish(
    dev_server: tuple[str, str, subprocess.Popen[bytes]], tmp_path: Path
) -> None:
    base, token, process = dev_server
    port = int(base.split(":")[2].split("/")[0])
    body = json.dumps({"title": "finished during shutdown"}).encode()
    head = (
        f"POST /api/tasks HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode()
    with socket.create_connection(("127.0.0.1", port)) as connection:
        connection.sendall(head + body[:10])  # the request is in flight, its body half sent
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        time.sleep(0.5)
        assert process.poll() is None, "the server exited with a request in flight"
        connection.sendall(body[10:])
        answer = connection.recv(65536).decode()
    assert answer.startswith("HTTP/1.1 201"), answer
    # uvicorn finishes the request, then ends the way SIGTERM asked it to.
    assert process.wait(timeout=30) in {0, -signal.SIGTERM}
    with sqlite3.connect(tmp_path / "todo.db") as db:
        titles = db.execute("SELECT title FROM tasks").fetchall()
    assert titles == [("finished during shutdown",)]


def test_serve_without_a_secret_refuses_to_start(tmp_path: Path, clean_env: dict[str, str]) -> None:
    result = run(["serve", "--port", str(free_port())], tmp_path, clean_env)
    assert result.returncode == 2
    assert "BETTER_AUTH_SECRET" in result.stderr
    assert "--dev" in result.stderr


@pytest.mark.parametrize(
    "option",
    [
        ["--port", "70000"],
        ["--port", "0"],
        ["--port", "abc"],
        ["--workers", "0"],
        ["--workers", "x"],
    ],
)
def test_serve_options_out_of_range_are_usage_errors(
    tmp_path: Path, clean_env: dict[str, str], option: list[str]
) -> None:
    result = run(["serve", "--dev", *option], tmp_path, clean_env)
    assert result.returncode == 2
    assert result.stderr.splitlines()[-1].startswith(f"todo-api serve: error: argument {option[0]}")
    assert "eyJ" not in result.stderr  # refused before any token is minted


def test_token_is_signed_with_the_configured_secret(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    env = {**clean_env, "BETTER_AUTH_SECRET": SECRET, "JWT_ISSUER": "https://app.example"}
    result = run(["token", "user-42", "--ttl", "120"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    claims = jwt.decode(
        result.stdout.strip(), SECRET, algorithms=["HS256"], issuer="https://app.example"
    )
    assert claims["sub"] == "user-42"
    assert 100 <= claims["exp"] - claims["iat"] <= 120


@pytest.mark.parametrize("ttl", ["99999999999999", "31536001", "0", "-5", "1.5", "soon"])
def test_token_lifetime_outside_a_second_to_a_year_is_a_usage_error(
    tmp_path: Path, clean_env: dict[str, str], ttl: str
) -> None:
    env = {**clean_env, "BETTER_AUTH_SECRET": SECRET}
    result = run(["token", "alice", "--ttl", ttl], tmp_path, env)
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.startswith("usage: todo-api token")
    assert "argument --ttl" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("ttl", ["1", "31536000"])
def test_token_lifetime_bounds_are_accepted(
    tmp_path: Path, clean_env: dict[str, str], ttl: str
) -> None:
    env = {**clean_env, "BETTER_AUTH_SECRET": SECRET}
    result = run(["token", "alice", "--ttl", ttl], tmp_path, env)
    assert result.returncode == 0, result.stderr
    # A one-second token may have expired by now: its lifetime is what is checked.
    claims = jwt.decode(
        result.stdout.strip(), SECRET, algorithms=["HS256"], options={"verify_exp": False}
    )
    assert claims["exp"] - claims["iat"] == int(ttl)


@pytest.mark.parametrize("user_id", ["", "a\tb", "line\n", "x" * 256])
def test_token_for_a_user_id_the_api_refuses_is_a_usage_error(
    tmp_path: Path, clean_env: dict[str, str], user_id: str
) -> None:
    assert not is_user_id(user_id)
    result = run(["token", user_id], tmp_path, {**clean_env, "BETTER_AUTH_SECRET": SECRET})
    assert result.returncode == 2
    assert result.stdout == ""
    assert "argument USER_ID" in result.stderr.splitlines()[-1]


def test_token_reads_dotenv(tmp_path: Path, clean_env: dict[str, str]) -> None:
    (tmp_path / ".env").write_text(f"BETTER_AUTH_SECRET={SECRET}\n")
    result = run(["token", "alice"], tmp_path, clean_env)
    assert result.returncode == 0, result.stderr
    assert jwt.decode(result.stdout.strip(), SECRET, algorithms=["HS256"])["sub"] == "alice"


def test_token_without_a_secret_fails_clearly(tmp_path: Path, clean_env: dict[str, str]) -> None:
    result = run(["token", "alice"], tmp_path, clean_env)
    assert result.returncode == 2
    assert "BETTER_AUTH_SECRET" in result.stderr


def test_bad_log_level_is_a_clear_error(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = {**clean_env, "BETTER_AUTH_SECRET": SECRET, "LOG_LEVEL": "verbose"}
    result = run(["token", "alice"], tmp_path, env)
    assert result.returncode == 2
    assert "LOG_LEVEL" in result.stderr
    assert "Traceback" not in result.stderr


def test_db_upgrade_creates_the_schema(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = {**clean_env, "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db"}
    for _ in range(2):  # a second run finds nothing to do
        result = run(["db", "upgrade"], tmp_path, env)
        assert result.returncode == 0, result.stderr
    with sqlite3.connect(tmp_path / "fresh.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
        version = db.execute("SELECT version_num FROM alembic_version").fetchall()
    assert {"tasks", "task_owners"} <= tables
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert version == [(head,)]


def test_db_purge_removes_expired_deletions(tmp_path: Path, clean_env: dict[str, str]) -> None:
    env = {**clean_env, "DATABASE_URL": f"sqlite:///{tmp_path}/purge.db"}
    assert run(["db", "upgrade"], tmp_path, env).returncode == 0
    with sqlite3.connect(tmp_path / "purge.db") as db:
        db.execute("INSERT INTO task_owners (user_id, task_count) VALUES ('alice', 0)")
        db.executemany(
            "INSERT INTO tasks (user_id, title, completed, priority, tags, created_at,"
            " updated_at, version, seq, deleted_at) VALUES ('alice', 't', 0, 2, '[]',"
            " '2026-01-01 00:00:00', '2026-01-01 00:00:00', 2, ?, ?)",
            [(1, "2000-01-01 00:00:00"), (2, None)],
        )
    result = run(["db", "purge"], tmp_path, env)
    assert result.returncode == 0, result.stderr
    assert "purged 1 deleted tasks older than 30 days" in result.stdout
    with sqlite3.connect(tmp_path / "purge.db") as db:
        assert db.execute("SELECT seq FROM tasks").fetchall() == [(2,)]
        assert db.execute("SELECT purged_seq FROM task_owners").fetchall() == [(1,)]


@pytest.mark.parametrize(
    "command", [[TODO_API], [sys.executable, "-m", "todo_api"]], ids=["todo-api", "python -m"]
)
def test_version_prints_the_installed_distributions_version(
    tmp_path: Path, clean_env: dict[str, str], command: list[str]
) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert project["name"] == todo_api.about.DISTRIBUTION
    result = subprocess.run(
        [*command, "--version"], cwd=tmp_path, env=clean_env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"todo-api {project['version']}\n"
    assert result.stderr == ""


def test_version_without_an_installed_distribution_says_so(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    with pytest.raises(SystemExit) as exited:
        todo_api.cli.main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out == (
        "todo-api (version unknown: the todo-api distribution is not installed)\n"
    )


HELP_PAGES = [[], ["serve"], ["token"], ["db"], ["db", "upgrade"], ["db", "purge"]]


def undescribed(page: str) -> list[str]:
    """The commands, arguments and options a --help page lists without saying what they do.

    argparse indents an entry by 2 (4 for a subcommand) and puts its help beside it, after two
    or more spaces, or, when the entry is long, on the next line, indented further.
    """
    lines = page.splitlines()
    bare = []
    for line, after in zip(lines, [*lines[1:], ""], strict=True):
        indent = len(line) - len(line.lstrip(" "))
        if indent not in (2, 4) or "  " in line.strip():
            continue
        if len(after) - len(after.lstrip(" ")) <= indent + 2:
            bare.append(line.strip())
    return bare


@pytest.mark.parametrize("command", HELP_PAGES, ids=" ".join)
def test_help_describes_the_program_and_every_option(
    tmp_path: Path, clean_env: dict[str, str], command: list[str]
) -> None:
    result = run([*command, "--help"], tmp_path, clean_env)
    assert result.returncode == 0, result.stderr
    page = result.stdout
    assert f"usage: todo-api {' '.join(command)}".strip() in page
    # A description below the usage: the first paragraph that is not the usage itself.
    description = page.split("\n\n")[1]
    assert description.strip()
    assert " ".join(todo_api.cli.__doc__.split()) not in " ".join(page.split())
    assert undescribed(page) == [], page


DATABASE_COMMANDS = [
    ["db", "upgrade"],
    ["db", "purge"],
    ["serve", "--dev"],
    ["serve", "--dev", "--workers", "2"],
]


def unreachable_postgres() -> tuple[str, str, str]:
    """A PostgreSQL URL nothing answers at, its host and port, and the driver's reason."""
    url = f"postgresql://someone:secretpw@127.0.0.1:{free_port()}/todo"
    with pytest.raises(psycopg2.OperationalError) as refused:
        psycopg2.connect(url)
    return url, url.split("@")[1].split("/")[0], str(refused.value).splitlines()[0]


def unopenable_sqlite(tmp_path: Path) -> tuple[str, str, str]:
    path = tmp_path / "no-such-directory" / "todo.db"
    with pytest.raises(sqlite3.OperationalError) as refused:
        sqlite3.connect(path)
    return f"sqlite:///{path}", str(path), str(refused.value).splitlines()[0]


@pytest.mark.parametrize("command", DATABASE_COMMANDS, ids=" ".join)
@pytest.mark.parametrize("database", ["postgresql", "sqlite"])
def test_a_database_that_fails_is_one_line_naming_it(
    tmp_path: Path, clean_env: dict[str, str], command: list[str], database: str
) -> None:
    url, where, reason = (
        unreachable_postgres() if database == "postgresql" else unopenable_sqlite(tmp_path)
    )
    port = ["--port", str(free_port())] if command[0] == "serve" else []
    result = run([*command, *port], tmp_path, {**clean_env, "DATABASE_URL": url})
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()  # and so no token, nor any log of a start
    assert line.startswith("todo-api: database ")
    assert where in line
    assert reason in line
    assert "secretpw" not in line


@pytest.mark.parametrize(
    "url", ["not a url", "nosuchdb://h/x", "postgresql://someone:secretpw@h:port/x"]
)
@pytest.mark.parametrize(
    ("command", "migrate"),
    [
        (["db", "upgrade"], "true"),
        (["db", "purge"], "true"),
        (["serve", "--dev"], "true"),
        (["serve", "--dev"], "false"),
    ],
    ids=["db upgrade", "db purge", "serve", "serve AUTO_MIGRATE=false"],
)
def test_a_database_url_it_cannot_use_is_a_configuration_error(
    tmp_path: Path, clean_env: dict[str, str], command: list[str], migrate: str, url: str
) -> None:
    port = ["--port", str(free_port())] if command[0] == "serve" else []
    env = {**clean_env, "DATABASE_URL": url, "AUTO_MIGRATE": migrate}
    result = run([*command, *port], tmp_path, env)
    assert result.returncode == 2, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("todo-api: DATABASE_URL ")
    assert "secretpw" not in line


@pytest.mark.parametrize(
    "url", ["sqlite://", "sqlite:///:memory:", "sqlite+pysqlite://", "sqlite+pysqlite:///:memory:"]
)
@pytest.mark.parametrize(
    "command", [["serve"], ["serve", "--dev"], ["db", "upgrade"]], ids=" ".join
)
def test_an_in_memory_sqlite_database_is_refused_in_one_line(
    tmp_path: Path, clean_env: dict[str, str], command: list[str], url: str
) -> None:
    port = ["--port", str(free_port())] if command[0] == "serve" else []
    env = {**clean_env, "DATABASE_URL": url, "BETTER_AUTH_SECRET": SECRET}
    # It exits (a server that started would run until the timeout), before any migration.
    result = run([*command, *port], tmp_path, env)
    assert result.returncode == 2, result.stderr
    assert result.stdout == ""
    assert result.stderr == (
        "todo-api: DATABASE_URL names an SQLite database in memory, which each connection opens "
        "empty and which ends with the process: use a file path, such as sqlite:///todo.db.\n"
    )


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_taken_port_is_one_line_before_any_token_or_migration(
    tmp_path: Path, clean_env: dict[str, str], workers: str
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run(
            ["serve", "--dev", "--port", str(port), "--workers", workers], tmp_path, clean_env
        )
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    [line] = result.stderr.splitlines()  # no token, no warning, no log of a start
    assert line.startswith(f"todo-api: cannot listen on 127.0.0.1:{port}: ")
    assert not (tmp_path / "todo.db").exists()  # not migrated either


def test_an_address_that_does_not_resolve_is_one_line(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    # .invalid never resolves (RFC 6761).
    result = run(["serve", "--dev", "--host", "no-such-host.invalid"], tmp_path, clean_env)
    assert result.returncode == 1, result.stderr
    [line] = result.stderr.splitlines()
    assert line.startswith("todo-api: cannot listen on no-such-host.invalid:8000: ")


# `LEVEL:   logger.name: message`, whoever wrote the line.
LOG_LINE = re.compile(r"(?:DEBUG|INFO|WARNING|ERROR|CRITICAL): +(?P<name>[\w.]+): \S.*")


def test_every_command_logs_in_one_format(
    dev_server: tuple[str, str, subprocess.Popen[bytes]], tmp_path: Path, clean_env: dict[str, str]
) -> None:
    base, token, process = dev_server
    assert httpx.get(f"{base}/tasks", headers={"Authorization": f"Bearer {token}"}).is_success
    process.terminate()
    process.wait(timeout=30)
    served = (tmp_path / "serve.log").read_text().splitlines()
    names = {match["name"] for line in served if (match := LOG_LINE.fullmatch(line))}
    assert {"uvicorn.error", "todo_api.access", "todo_api", "alembic.runtime.migration"} <= names
    # uvicorn's own access line is off: each request has one line, the application's.
    assert "uvicorn.access" not in names
    # All else is what --dev prints for a person to read: where to go, and the token.
    printed = [line for line in served if not LOG_LINE.fullmatch(line)]
    assert len(printed) == 3, printed
    assert printed[0].startswith("Swagger UI: ")
    assert printed[2] == token

    # The same migrations from `db upgrade` log the same lines as they did under serve.
    (tmp_path / "again").mkdir()
    upgraded = run(["db", "upgrade"], tmp_path / "again", clean_env)
    assert upgraded.returncode == 0, upgraded.stderr
    migrations = [line for line in served if line.startswith("INFO:     alembic.")]
    assert migrations
    assert upgraded.stderr.splitlines() == migrations


# A mistake nothing foresees (as this is written): Settings fails on it, not with a ConfigError.
UNFORESEEN = {"TASK_QUOTA": "9" * 400}


@pytest.mark.parametrize("command", [["token", "alice"], ["serve", "--dev"]], ids=" ".join)
def test_an_unforeseen_failure_is_one_line_its_traceback_at_debug(
    tmp_path: Path, clean_env: dict[str, str], command: list[str]
) -> None:
    with pytest.raises(Exception) as unforeseen:  # noqa: PT011 - any but a ConfigError
        Settings.from_env(UNFORESEEN)
    assert not issubclass(unforeseen.type, ConfigError), "Settings foresees it now: pick another"
    env = {**clean_env, **UNFORESEEN, "BETTER_AUTH_SECRET": SECRET}
    command = [*command, "--port", str(free_port())] if command[0] == "serve" else command
    result = run(command, tmp_path, env)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith(f"todo-api: unexpected {unforeseen.type.__name__}: ")
    assert str(unforeseen.value) in line
    debugged = run(command, tmp_path, {**env, "LOG_LEVEL": "DEBUG"})
    assert debugged.returncode == 1
    assert "Traceback" in debugged.stderr
    assert debugged.stderr.splitlines()[-1] == line


def test_an_unreadable_dotenv_is_a_configuration_error(
    tmp_path: Path, clean_env: dict[str, str]
) -> None:
    (tmp_path / ".env").write_bytes("BETTER_AUTH_SECRET=caf\xe9\n".encode("latin-1"))
    result = run(["token", "alice"], tmp_path, clean_env)
    assert result.returncode == 2
    [line] = result.stderr.splitlines()
    assert line.startswith(f"todo-api: {tmp_path / '.env'} cannot be read: ")


@pytest.mark.parametrize("where", ["environment", ".env"])
def test_serve_takes_its_port_and_processes_from_the_platforms_variables(
    tmp_path: Path, clean_env: dict[str, str], where: str
) -> None:
    port = free_port()
    variables = {"PORT": str(port), "WEB_CONCURRENCY": "2"}
    env = clean_env | variables if where == "environment" else clean_env
    if where == ".env":
        (tmp_path / ".env").write_text("".join(f"{k}={v}\n" for k, v in variables.items()))
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [TODO_API, "serve", "--dev"], cwd=tmp_path, env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/api", process)
        served = (tmp_path / "serve.log").read_text()
        assert f"serving on http://127.0.0.1:{port}/api with 2 worker process(es)" in served
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.mark.parametrize(
    ("name", "value", "said"),
    [
        ("PORT", "abc", "PORT must be a whole number, not 'abc'."),
        ("PORT", "70000", "PORT must be from 1 to 65535, not 70000."),
        ("PORT", "0", "PORT must be from 1 to 65535, not 0."),
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY must be from 1 to 1000, not 0."),
        ("WEB_CONCURRENCY", "x", "WEB_CONCURRENCY must be a whole number or auto, not 'x'."),
    ],
)
def test_a_bad_platform_variable_is_refused_by_its_name(
    tmp_path: Path, clean_env: dict[str, str], name: str, value: str, said: str
) -> None:
    # One line, as any other setting is refused: no usage, no option it was not given.
    result = run(["serve", "--dev"], tmp_path, clean_env | {name: value})
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr == f"todo-api: {said}\n"


@pytest.mark.parametrize("how", ["option", "environment"])
def test_workers_auto_serves_with_one_process_per_usable_cpu(
    tmp_path: Path, clean_env: dict[str, str], how: str
) -> None:
    port = free_port()
    args = ["serve", "--dev", "--port", str(port)]
    env = dict(clean_env)
    if how == "option":
        args += ["--workers", "auto"]
    else:
        env["WEB_CONCURRENCY"] = "auto"
    process = subprocess.Popen(
        [TODO_API, *args],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/api", process)
        cpus = len(os.sched_getaffinity(0))
        # With several workers uvicorn's first process supervises, each worker a child of it
        # (beside multiprocessing's resource tracker); with one, the first process serves.
        # The workers may still be starting.
        deadline = time.monotonic() + 20
        while len(server_processes(process.pid)) != cpus:
            assert time.monotonic() < deadline, server_processes(process.pid)
            time.sleep(0.2)
    finally:
        process.terminate()
        process.wait(timeout=30)


def server_processes(pid: int) -> list[int]:
    """The processes that serve requests for the `serve` process `pid`."""
    children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    workers = [
        int(child)
        for child in children
        if b"spawn_main" in Path(f"/proc/{child}/cmdline").read_bytes()
    ]
    return workers or [pid]


@pytest.mark.parametrize(
    ("workers", "redis_url", "warned"),
    [("2", None, True), ("1", None, False), ("2", "redis://127.0.0.1:6379/15", False)],
)
def test_several_workers_without_redis_warn_that_limits_are_per_process(
    tmp_path: Path, clean_env: dict[str, str], workers: str, redis_url: str | None, warned: bool
) -> None:
    port = free_port()
    env = {k: v for k, v in clean_env.items() if k != "REDIS_URL"}
    if redis_url:
        env["REDIS_URL"] = redis_url
    log = (tmp_path / "serve.log").open("w+")
    process = subprocess.Popen(
        [TODO_API, "serve", "--dev", "--port", str(port), "--workers", workers],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_until_healthy(f"http://127.0.0.1:{port}/api", process)
    finally:
        process.terminate()
        process.wait(timeout=30)
    log.seek(0)
    said = log.read()
    assert ("counted in each process apart" in said) is warned, said
