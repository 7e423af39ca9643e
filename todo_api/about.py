"""What this service is: the name and version of its installed distribution."""

from __future__ import annotations

import importlib.metadata

# pyproject.toml's [project] name: the installed distribution whose metadata has the version.
DISTRIBUTION = "todo-api"


def version() -> str | None:
    """The installed version; None when run from a checkout that was never installed."""
    try:
        return importlib.metadata.version(DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        return None
