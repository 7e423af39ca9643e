"""The process tests.perf.instructions runs under callgrind, by path, with the tree to measure
first on PYTHONPATH: it imports nothing of this checkout's that an earlier tree lacks."""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import subprocess
import sys

WARM_UP = 20


def child(argv: list[str]) -> None:
    """Run inside callgrind: warm up, then count `requests` requests."""
    app_name, scenario, requests, user, first, last, cursor, run_name = argv
    logging.disable(logging.CRITICAL)
    from tests.perf.cpu import Client, _requests
    from tests.perf.seed import Owner
    from todo_api.auth.authenticator import Expected, mint_token

    if app_name == "ours":
        from todo_api.app import create_app
        from todo_api.settings import Settings

        app = create_app(Settings.from_env())
    else:
        from tests.perf import floor

        app = floor.app
    owner = Owner(user, int(first), int(last), None if cursor == "none" else cursor)
    token = mint_token(os.environ["BETTER_AUTH_SECRET"], user, dt.timedelta(hours=1), Expected())

    def instrument(on: bool) -> None:
        switch = ["callgrind_control", "--instr=" + ("on" if on else "off"), str(os.getpid())]
        subprocess.run(switch, check=True, capture_output=True)

    async def run() -> None:
        client = Client(app)
        await client.start()
        calls = _requests(owner, scenario, WARM_UP + int(requests), run_name)
        for method, target, body in calls[:WARM_UP]:
            await client.request(method, target, token, body)
        instrument(True)
        for method, target, body in calls[WARM_UP:]:
            status, answer = await client.request(method, target, token, body)
            if not 200 <= status < 300:
                raise RuntimeError(f"{method} {target}: {status} {answer[:200]!r}")
        instrument(False)
        await client.stop()

    asyncio.run(run())


if __name__ == "__main__":
    child(sys.argv[1:])
