"""The application around the handlers: its composition root, command line, settings,
authentication and HTTP plumbing."""

from __future__ import annotations

from todo_api.app import create_app
from todo_api.cli import main

__all__ = ["create_app", "main"]
