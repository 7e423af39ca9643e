"""docs/mcp.md's table of tools, made from the contract by the generator the server lists its
tools with (todo_api.mcp.tools), between two marker comments. tests/unit/test_docs_mcp.py
fails when the page's table is not this one; `python -m tests.docs_tools` writes it in."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from todo_api.contract import spec
from todo_api.mcp.tools import USER_ID, ToolDefinition, tools

PAGE = Path(__file__).resolve().parents[1] / "docs" / "mcp.md"
START = "<!-- tools:start (written by `python -m tests.docs_tools`: do not edit by hand) -->"
END = "<!-- tools:end -->"
# What MCP takes a hint to be when a tool does not give it (the specification's ToolAnnotations).
HINT_DEFAULTS = {"readOnlyHint": False, "destructiveHint": True, "idempotentHint": False}


def table(definitions: Iterable[ToolDefinition]) -> str:
    """One row a tool: its name, its operation's summary, its arguments (required ones marked,
    `user_id` left out: every tool takes it) and what a client takes its annotations to say."""
    rows = [
        "| Tool | What it does | Arguments (* required) | Read-only | Destructive | Idempotent |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for tool in definitions:
        read_only = tool.annotations.get("readOnlyHint", HINT_DEFAULTS["readOnlyHint"])
        # The other two hints mean something only for a tool that writes.
        destructive = "-" if read_only else _hint(tool, "destructiveHint")
        idempotent = "-" if read_only else _hint(tool, "idempotentHint")
        cells = [
            f"`{tool.name}`",
            _cell(tool.title),
            _arguments(tool.input_schema),
            _hint(tool, "readOnlyHint"),
            destructive,
            idempotent,
        ]
        rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def generated() -> str:
    return table(tools(spec()))


def written(page: str) -> str | None:
    """The table between the page's markers, or None without both markers in order."""
    start, end = page.find(START), page.find(END)
    if start < 0 or end < start:
        return None
    return page[start + len(START) : end].strip("\n")


def rewritten(page: str, made: str) -> str:
    """The page with `made` between its markers."""
    start, end = page.find(START), page.find(END)
    if start < 0 or end < start:
        raise ValueError(f"{PAGE.name} has no {START} ... {END}")
    return page[: start + len(START)] + "\n" + made + "\n" + page[end:]


def _arguments(input_schema: Mapping[str, Any]) -> str:
    required = set(input_schema.get("required", ()))
    names = [name for name in input_schema["properties"] if name != USER_ID]
    return ", ".join(f"`{name}`*" if name in required else f"`{name}`" for name in names) or "-"


def _hint(tool: ToolDefinition, name: str) -> str:
    """What a client takes the hint to be; `(unset)` when the tool leaves it to MCP's default."""
    if name in tool.annotations:
        return "yes" if tool.annotations[name] else "no"
    return ("yes" if HINT_DEFAULTS[name] else "no") + " (unset)"


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def main() -> int:
    page = PAGE.read_text(encoding="utf-8")
    updated = rewritten(page, generated())
    if updated != page:
        PAGE.write_text(updated, encoding="utf-8")
        print(f"rewrote the table of tools in {PAGE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
