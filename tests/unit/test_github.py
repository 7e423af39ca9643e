"""What a team that pushes this repository to GitHub gets: .ci/run and the audit in a workflow,
and Dependabot for every manifest."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]


def load(path: str) -> Any:
    return yaml.safe_load((ROOT / path).read_text())


def runs(job: dict[str, Any]) -> list[str]:
    return [step["run"] for step in job["steps"] if "run" in step]


def test_the_workflow_runs_ci_run_beside_postgresql_and_redis() -> None:
    jobs = load(".github/workflows/ci.yml")["jobs"]
    [ci] = [job for job in jobs.values() if any(".ci/run" in run for run in runs(job))]
    assert ci["runs-on"] == "ubuntu-latest"
    assert set(ci["services"]) == {"postgres", "redis"}
    # The ports .ci/run and the test suite expect, with PostgreSQL's trust auth and test database.
    assert ci["services"]["postgres"]["ports"] == ["5432:5432"]
    assert ci["services"]["postgres"]["env"]["POSTGRES_DB"] == "test"
    assert ci["services"]["redis"]["ports"] == ["6379:6379"]
    [step] = [step for step in ci["steps"] if ".ci/run" in step.get("run", "")]
    assert step["env"]["CI"] == "true"


def test_the_audit_is_a_job_of_its_own() -> None:
    jobs = load(".github/workflows/ci.yml")["jobs"]
    audits = [job for job in jobs.values() if any(run.startswith("pip-audit") for run in runs(job))]
    [audit] = audits
    assert "pip-audit --strict -r requirements.lock" in runs(audit)
    assert not any(".ci/run" in run for run in runs(audit))


def test_dependabot_watches_pip_actions_and_every_npm_lock() -> None:
    updates = load(".github/dependabot.yml")["updates"]
    watched = {(update["package-ecosystem"], update["directory"]) for update in updates}
    npm = {
        ("npm", "/" + str(lock.parent.relative_to(ROOT)))
        for lock in ROOT.rglob("package-lock.json")
        if "node_modules" not in lock.parts and ".venv" not in lock.parts
    }
    assert npm, "no package-lock.json found"
    assert watched == {("pip", "/"), ("github-actions", "/"), *npm}


def test_the_lock_is_remade_weekly_with_its_own_command_upgraded() -> None:
    """Dependabot does not read requirements.lock: a workflow remakes it, with the command the
    lock's header gives (so the two cannot drift) and --upgrade."""
    header = (ROOT / "requirements.lock").read_text().splitlines()[1]
    command = header.removeprefix("#").strip()
    assert command.startswith("uv pip compile ")
    workflow = load(".github/workflows/lock.yml")
    assert workflow[True]["schedule"]  # YAML 1.1 reads the key `on` as True
    [job] = workflow["jobs"].values()
    assert f"{command} --upgrade" in runs(job)
