"""requirements.lock (what the image installs) keeps up with pyproject.toml."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ \\]+)", re.MULTILINE)


def test_the_lock_pins_every_runtime_dependency_within_its_bounds_with_hashes() -> None:
    lock = (ROOT / "requirements.lock").read_text()
    pinned = {canonicalize_name(name): version for name, version in PIN.findall(lock)}
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in declared:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pinned, f"{name} is not in requirements.lock: refresh it (docs/deploying.md)"
        assert requirement.specifier.contains(pinned[name]), f"{name}=={pinned[name]}: {line}"
    # Every pin carries hashes: pip's --require-hashes refuses a lock with one that does not.
    entries = re.split(r"\n(?=[A-Za-z0-9])", lock.split("\n", 2)[2])
    assert len(entries) == len(pinned)
    assert all("--hash=sha256:" in entry for entry in entries)
