"""The heap a served process starts with, kept out of the cyclic garbage collector's way.

A started worker holds a large, long-lived heap: the modules imported, the spec as each of
Connexion's middlewares keeps it, SQLAlchemy's metadata, the MCP and chat SDKs. Each full
(generation 2) collection walks all of it, and while it does, no request moves: measured at
10 connections, such a pause took 120 ms (docs/benchmark.md). Frozen once the app has
started (gc.freeze), that heap is no longer walked; what requests allocate still is.
"""

from __future__ import annotations

import gc

from starlette.types import ASGIApp, Message, Receive, Scope, Send


class FrozenAfterStartup:
    """Collect, then freeze the heap, when the app tells the server it has started."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def send_started(message: Message) -> None:
            if message["type"] == "lifespan.startup.complete":
                gc.collect()
                gc.freeze()
            await send(message)

        await self.app(scope, receive, send_started)
