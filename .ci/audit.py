"""pip-audit of requirements.lock, where its vulnerability service answers.

Run by .ci/run as `python .ci/audit.py`. The audit asks PyPI's JSON API about each pinned
release. A machine that cannot reach it, or reaches a mirror that knows the package index but
not that API (every release "not found"), has no audit to run: that is printed as a skip, and
never as a pass. Where the service answers for any of the releases probed, the audit runs
with --strict, so a release it could not look up fails the run like a vulnerable one.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCK = ROOT / "requirements.lock"
# pip-audit's default service, asked as pip-audit asks it.
SERVICE = "https://pypi.org/pypi/{name}/{version}/json"
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^ \\]+)", re.MULTILINE)
PROBES = 3
TIMEOUT_SECONDS = 15


def unreachable_because() -> str | None:
    """Why the service cannot audit this lock, or None when it answers for any of the releases
    probed: one release it does not know is the audit's to fail, not a reason to skip it."""
    pins = PIN.findall(LOCK.read_text())[:PROBES]
    reasons = [_refusal(SERVICE.format(name=name, version=version)) for name, version in pins]
    if not pins:
        return f"{LOCK.name} pins nothing"
    if None in reasons:
        return None
    return "; ".join(str(reason) for reason in reasons)


def _refusal(url: str) -> str | None:
    """Why `url` is no answer from the vulnerability service, or None when it is one."""
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310
            body = json.load(response)
    except urllib.error.HTTPError as exc:
        # The lock's releases were installed from the index minutes ago: a service that does
        # not know them is not the one pip-audit needs.
        return f"{url} answered {exc.code} for a release the lock pins"
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        return f"{url} cannot be reached ({getattr(exc, 'reason', exc)})"
    except ValueError:
        return f"{url} did not answer JSON"
    if not isinstance(body, dict) or not isinstance(body.get("vulnerabilities"), list):
        return f"{url} answered without a list of vulnerabilities"
    return None


def main() -> int:
    reason = unreachable_because()
    if reason is not None:
        print(f"dependency audit SKIPPED, it did not run: {reason}", flush=True)
        return 0
    # The lock is hashed, so pip-audit reads it as it is, without resolving it again.
    command = [sys.executable, "-m", "pip_audit", "--strict", "--disable-pip"]
    result = subprocess.run([*command, "-r", str(LOCK)], check=False)  # noqa: S603
    print(f"dependency audit: {'ok' if result.returncode == 0 else 'FAILED'}", flush=True)
    return result.returncode


if __name__ == "__main__":
    sys.exit(main())
