"""The layers of docs/design.md, "How it is built": every production module sits in one layer of the
import-linter contract (pyproject.toml), imports first in a fresh interpreter, and no modules
import each other round a cycle."""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("todo_api", "handlers", "storage")
# Alembic loads the migrations by file, one at a time, and `python -m todo_api` runs its main.
NOT_IMPORTED = ("storage.migrations", "todo_api.__main__")


def production_modules() -> list[str]:
    modules = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            if not name.startswith(NOT_IMPORTED):
                modules.append(name)
    return modules


def _layers() -> list[list[str]]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    (contract,) = pyproject["tool"]["importlinter"]["contracts"]
    return [
        [name.strip() for name in layer.replace("|", ":").split(":")]
        for layer in contract["layers"]
    ]


def _in(module: str, container: str) -> bool:
    return module == container or module.startswith(container + ".")


def test_every_module_is_in_one_layer() -> None:
    containers = [name for layer in _layers() for name in layer]
    outside = [
        module
        for module in production_modules()
        if module not in PACKAGES and sum(_in(module, c) for c in containers) != 1
    ]
    assert outside == []


def test_every_module_imports_first_in_a_fresh_interpreter() -> None:
    # One interpreter that has imported nothing of ours forks a child per module: each child
    # imports its module first, as `python -c "import handlers.tasks"` would. The libraries
    # are imported once, before the forks, for speed: only the order of ours is in question.
    program = textwrap.dedent(
        """
        import os, sys, traceback
        modules = sys.argv[1 : sys.argv.index("--")]
        for library in sys.argv[sys.argv.index("--") + 1 :]:
            try:
                __import__(library)
            except ImportError:
                pass  # an optional extra (OpenTelemetry)
        failed, running = [], {}
        def reap():
            pid, status = os.wait()
            if status:
                failed.append(running[pid])
            del running[pid]
        for name in modules:
            while len(running) >= 4:
                reap()
            pid = os.fork()
            if pid == 0:
                try:
                    __import__(name)
                except BaseException:
                    traceback.print_exc()
                    os._exit(1)
                os._exit(0)
            running[pid] = name
        while running:
            reap()
        print(sorted(failed))
        """
    )
    modules = production_modules()
    graph = grimp.build_graph(*PACKAGES, include_external_packages=True, cache_dir=None)
    libraries = sorted(m for m in graph.modules if not m.startswith(PACKAGES))
    done = subprocess.run(
        [sys.executable, "-c", program, *modules, "--", *libraries],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    assert done.stdout.strip() == "[]", done.stderr[-4000:]
    assert len(modules) > 60


def test_no_modules_import_each_other_round_a_cycle() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    modules = set(production_modules())
    cycles = [
        sorted(component) for component in _strongly_connected(graph, modules) if len(component) > 1
    ]
    assert cycles == []


def _strongly_connected(graph: grimp.ImportGraph, modules: set[str]) -> list[set[str]]:
    """Tarjan's algorithm, without recursion."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for start in sorted(modules):
        if start in index:
            continue
        work = [(start, iter(sorted(graph.find_modules_directly_imported_by(start) & modules)))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    imported = graph.find_modules_directly_imported_by(child) & modules
                    work.append((child, iter(sorted(imported))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                found.append(component)
    return found


def _how_it_is_built() -> str:
    page = (ROOT / "docs" / "design.md").read_text(encoding="utf-8")
    assert page.startswith("# How it is built\n")
    return page


def test_the_design_page_names_every_module_and_the_layers_in_order() -> None:
    section = _how_it_is_built()
    unnamed = [
        path
        for path in (
            str(ROOT.joinpath(*module.split(".")).with_suffix(".py").relative_to(ROOT))
            if (ROOT.joinpath(*module.split(".")).with_suffix(".py")).exists()
            else str(ROOT.joinpath(*module.split("."), "__init__.py").relative_to(ROOT))
            for module in production_modules()
        )
        if f"`{path}`" not in section and not _only_a_docstring(ROOT / path)
    ]
    assert unnamed == []
    # Each layer's row names its modules in the contract's order, top down.
    rows = [line for line in section.splitlines() if line.startswith("| ") and "Layer" not in line]
    named = [name for layer in _layers() for name in layer]
    positions = [next(i for i, row in enumerate(rows) if f"`{name}`" in row) for name in named]
    assert positions == sorted(positions)


def _only_a_docstring(path: Path) -> bool:
    body = ast.parse(path.read_text()).body
    return all(isinstance(node, ast.Expr) for node in body)
