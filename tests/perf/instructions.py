"""Instructions per request, counted by callgrind: `python -m tests.perf.instructions`.

    python -m tests.perf.instructions [--only get list ...] [--apps ours floor]
        [--requests N] [--tree DIR ...]

CPU time on a shared machine moves by more than most single changes save (tests.perf.cpu's
floor/ours swings by about 0.06 from run to run); the instructions a request executes do not.
Each app is called in process, one request at a time as in tests.perf.cpu, under valgrind's
callgrind with instrumentation off until 20 requests have warmed it up, then on for
`--requests` more: every thread of the process is counted (the handlers' thread pool too), the
database server is not. `--tree` runs the app of another checkout (a `git worktree` of an
earlier commit, say) against the same seeded database, to weigh one change: trees and apps
alternate per scenario. Needs valgrind (Debian's package).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from tests.perf.cpu import seeded_database
from tests.perf.seed import Owner
from tests.perf.servers import DEFAULT_POSTGRES, ROOT


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.perf.instructions", description=__doc__)
    parser.add_argument("--postgres", default=os.environ.get("PERF_DATABASE_URL", DEFAULT_POSTGRES))
    parser.add_argument("--requests", type=int, default=100)
    parser.add_argument("--only", nargs="*", default=["list", "deep", "get", "create", "patch"])
    parser.add_argument("--apps", nargs="*", default=["ours", "floor"], choices=["ours", "floor"])
    parser.add_argument("--tree", nargs="*", default=[str(ROOT)], help="checkouts to compare")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        sys.exit("This needs valgrind: `apt-get install valgrind`.")
    from tests.databases import fresh_postgres

    with fresh_postgres(args.postgres) as url, tempfile.TemporaryDirectory() as work:
        env, owner = seeded_database(url)
        print(f"{'scenario':<8} {'app':<5} {'M instructions/request':>22}  tree")
        for scenario in args.only:
            for number, tree in enumerate(args.tree):
                for app in args.apps:
                    # Each run its own PATCH titles: one that repeats an earlier run's would find
                    # its titles stored, and weigh the no-op path instead of a write.
                    run = f"instructions-{number}-{app}"
                    count = _count(
                        Path(work), Path(tree), env, app, scenario, owner, args.requests, run
                    )
                    print(f"{scenario:<8} {app:<5} {count / 1e6:>22.3f}  {tree}", flush=True)
    return 0


def _count(
    work: Path,
    tree: Path,
    env: dict[str, str],
    app: str,
    scenario: str,
    owner: Owner,
    requests: int,
    run: str,
) -> int:
    """Instructions per request of `app` from `tree`, over `requests` requests of `scenario`
    (`run` names them, see tests.perf.cpu._requests)."""
    out = work / f"callgrind.{app}.{scenario}"
    command = [
        "valgrind",
        "--tool=callgrind",
        "--instr-atstart=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        # By path: with PYTHONPATH=tree, `tests` is the tree's, which may predate this file.
        str(Path(__file__).with_name("instructions_child.py")),
        app,
        scenario,
        str(requests),
        owner.user_id,
        str(owner.first_id),
        str(owner.last_id),
        owner.deep_cursor or "none",
        run,
    ]
    finished = subprocess.run(
        command,
        env=env | {"PYTHONPATH": str(tree)},
        cwd=tree,
        capture_output=True,
        text=True,
        check=False,
    )
    if finished.returncode != 0:
        raise RuntimeError(f"{app} {scenario} in {tree}:\n{finished.stderr[-3000:]}")
    totals = next(line for line in out.read_text().splitlines() if line.startswith("totals:"))
    return int(totals.split()[1]) // requests


if __name__ == "__main__":
    sys.exit(main())
