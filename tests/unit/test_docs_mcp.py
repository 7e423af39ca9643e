"""docs/mcp.md's table of tools is the one the contract makes: the generator the server lists
its tools with (todo_api.mcp.tools), written out by tests/docs_tools.py."""

from __future__ import annotations

import copy

from tests import docs_tools
from todo_api.contract import spec
from todo_api.mcp.tools import tools


def test_the_pages_table_of_tools_is_the_generated_one() -> None:
    page = docs_tools.PAGE.read_text(encoding="utf-8")
    expected = docs_tools.generated()
    assert docs_tools.written(page) == expected, (
        f"{docs_tools.PAGE.name}'s table of tools is not the contract's: run "
        f"`python -m tests.docs_tools` to write it in, or put this between its markers:\n\n"
        f"{expected}"
    )


def test_the_table_follows_the_contract() -> None:
    """A summary, an argument or a hint changed in the spec changes its row."""
    changed = copy.deepcopy(spec())
    operation = changed["paths"]["/tasks/{task_id}/complete"]["patch"]
    operation["summary"] = "Mark done | undone"
    operation["x-mcp-tool"]["annotations"]["destructiveHint"] = False
    rows = {row.split(" | ")[0]: row for row in docs_tools.table(tools(changed)).splitlines()}
    assert rows["| `complete_task`"] == (
        "| `complete_task` | Mark done \\| undone | `task_id`*, `completed` | no | no | no |"
    )
    assert rows["| `get_task`"] == "| `get_task` | Get one task | `task_id`* | yes | - | - |"
    assert "user_id" not in docs_tools.generated()


def test_rewriting_puts_the_table_between_the_markers_only() -> None:
    start, end = docs_tools.START, docs_tools.END
    page = f"# Title\n\nBefore.\n\n{start}\nstale\n{end}\n\nAfter.\n"
    made = docs_tools.rewritten(page, "| new |")
    assert made == f"# Title\n\nBefore.\n\n{start}\n| new |\n{end}\n\nAfter.\n"
    assert docs_tools.written(made) == "| new |"
    assert docs_tools.rewritten(made, "| new |") == made
    assert docs_tools.written("no markers") is None
