"""The frontend's side of the contract, as CI runs it: `python -m tests.interop.frontend.run`.

Starts the Better Auth harness and the API (checking Better Auth's JWTs, CORS open to one
loopback origin, its chatbot on tests/fake_openai.py's scripted model) on free ports with a
fresh SQLite database, then in tests/interop/frontend:
generates TypeScript types from the served /api/openapi.json with openapi-typescript (and
checks that they name the contract's schemas, and that /api/openapi.yaml gives the same types),
type-checks the openapi-fetch client with `tsc --noEmit`, runs it against the live server
(node:test, through tsx), its `subscribe` to the live updates included, and drives Swagger UI,
a cross-origin page and a native EventSource with a ticket in Debian's Chromium with
playwright-core. Screenshots land in
tests/interop/frontend/screenshots/. Exits non-zero on any
failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from tests.fake_openai import API_KEY, MODEL, serve_fake_openai
from tests.network import free_port, running_server

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).parent
HARNESS = HERE.parent / "better_auth"
BIN = Path(sys.executable).parent
NODE_BIN = HERE / "node_modules" / ".bin"
# Debian's Chromium here; another browser of its kind where CHROMIUM names it (GitHub's runner).
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As docs/frontend.md tells a Next.js app to generate them. Without `--default-non-nullable false`,
# a field with a default (`priority`, `tags`, `completed`) is required in every schema that is
# not inline in a request body, so a body typed by `TaskCreate` would have to send them all.
TYPES_OPTIONS = ["--default-non-nullable", "false"]
GENERATED = HERE / "generated" / "api.d.ts"
# openapi-typescript writes a `$ref` as the schema's name; from a document with its `$ref`s
# inlined, each operation would repeat the schema's fields, and a client could name none of them.
NAMED_TASK = '"application/json": components["schemas"]["Task"];'
TSX_TEST = [str(NODE_BIN / "tsx"), "--test", "--test-reporter=spec"]


def installed(directory: Path, package: str) -> None:
    """The packages its lock file pins, installed on first use (CI runs `npm ci` beforehand)."""
    if not (directory / "node_modules" / package).is_dir():
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=directory, check=True)


@contextlib.contextmanager
def better_auth() -> Iterator[str]:
    port = free_port()
    process = subprocess.Popen(
        ["node", "server.mjs"],
        cwd=HARNESS,
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("ready"):
            raise RuntimeError(f"Better Auth did not start: {line}{process.stdout.read()}")
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=20)


@contextlib.contextmanager
def api(better_auth_url: str, frontend_origin: str) -> Iterator[str]:
    with tempfile.TemporaryDirectory() as directory, serve_fake_openai() as model:
        env = {
            key: value
            for key, value in os.environ.items()
            # Only Better Auth's JWTs: a shared secret in the environment must not let others in.
            if key not in {"BETTER_AUTH_SECRET", "JWKS_URL", "JWT_ISSUER", "JWT_AUDIENCE"}
            # The chatbot on the fake model only, whatever model the environment names.
            and not key.startswith(("OPENAI_", "CHAT_"))
        }
        env.update(
            DATABASE_URL=f"sqlite:///{directory}/frontend.db",
            OPENAI_API_KEY=API_KEY,
            OPENAI_BASE_URL=model.base_url,
            CHAT_MODEL=MODEL,
            BETTER_AUTH_URL=better_auth_url,
            CORS_ORIGINS=frontend_origin,
            LOG_LEVEL="WARNING",
            RATE_LIMIT_PER_USER="1000000",
            RATE_LIMIT_PER_ADDRESS="1000000",
            # Streams end every 3 s, as at a token's expiry: the client must reconnect and resume.
            STREAM_MAX_SECONDS="3",
        )
        # cwd outside the repository, so that no developer's .env is read.
        # stdout carries only uvicorn's access log; errors go to stderr.
        with running_server(env, directory, stdout=subprocess.DEVNULL) as base:
            yield base


def step(title: str, command: list[str], env: dict[str, str] | None = None) -> bool:
    print(f"== frontend: {title}", flush=True)
    started = time.monotonic()
    result = subprocess.run(command, cwd=HERE, env={**os.environ, **(env or {})})
    outcome = "ok" if result.returncode == 0 else f"FAILED ({result.returncode})"
    print(f"== frontend: {title}: {outcome} in {time.monotonic() - started:.1f} s", flush=True)
    return result.returncode == 0


def check(title: str, passed: bool) -> bool:
    print(f"== frontend: {title}: {'ok' if passed else 'FAILED'}", flush=True)
    return passed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument(
        "--no-browser", action="store_true", help="skip Swagger UI and CORS in Chromium"
    )
    args = parser.parse_args()
    if not args.no_browser and not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 1
    installed(HARNESS, "better-auth")
    installed(HERE, "openapi-typescript")

    screenshots = HERE / "screenshots"
    shutil.rmtree(screenshots, ignore_errors=True)
    screenshots.mkdir()
    frontend_origin = f"http://127.0.0.1:{free_port()}"
    foreign_origin = f"http://127.0.0.1:{free_port()}"
    with (
        better_auth() as auth_url,
        api(auth_url, frontend_origin) as base,
        tempfile.TemporaryDirectory() as scratch,
    ):
        env = {
            "API_URL": base,
            "BETTER_AUTH_URL": auth_url,
            "FRONTEND_ORIGIN": frontend_origin,
            "FOREIGN_ORIGIN": foreign_origin,
            "SCREENSHOTS": str(screenshots),
            "CHROMIUM": CHROMIUM,
        }
        types = [str(NODE_BIN / "openapi-typescript"), *TYPES_OPTIONS]
        # Outside generated/, which tsc type-checks.
        from_yaml = Path(scratch) / "api.d.ts"
        passed = step(
            "types from the served contract (openapi-typescript)",
            [*types, f"{base}/openapi.json", "-o", str(GENERATED)],
        )
        passed = passed and check(
            "the operations' types name the contract's schemas",
            NAMED_TASK in GENERATED.read_text(encoding="utf-8"),
        )
        passed = passed and step(
            "types from the served YAML", [*types, f"{base}/openapi.yaml", "-o", str(from_yaml)]
        )
        passed = passed and check(
            "the same types from the YAML as from the JSON",
            from_yaml.read_bytes() == GENERATED.read_bytes(),
        )
        passed = passed and step("type-check (tsc --noEmit)", [str(NODE_BIN / "tsc"), "--noEmit"])
        passed = passed and step(
            "the client against the live API (tsx, node:test)",
            [*TSX_TEST, "src/client.test.ts"],
            env,
        )
        if not args.no_browser:
            passed = passed and step(
                "Swagger UI and CORS in Chromium (playwright-core)",
                [*TSX_TEST, "src/browser.test.ts"],
                env,
            )
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
