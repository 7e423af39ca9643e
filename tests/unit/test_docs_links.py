"""Every relative link of README.md and docs/ leads somewhere: to a file or directory of the
repository and, with a `#fragment`, to a heading of the Markdown page it names, by the slug
GitHub gives that heading. Links in code (fenced blocks, inline code) are text, not links."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path
from urllib.parse import unquote

import pytest

ROOT = Path(__file__).resolve().parents[2]

FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
HEADING = re.compile(r"^ {0,3}(#{1,6})[ \t]+(.*?)(?:[ \t]+#+)?[ \t]*$")
CODE_SPAN = re.compile(r"(`+)(?:(?!\n[ \t]*\n).)+?\1", re.S)  # within one paragraph
# [text](target) and ![alt](target), the target optionally in <...> and followed by a title.
INLINE = re.compile(
    r"!?\[(?:[^\[\]]|\[[^\[\]]*\])*\]"  # the text, which may hold one level of brackets
    r"\(\s*(<[^>]*>|[^\s()]+)(?:\s+(?:\"[^\"]*\"|'[^']*'))?\s*\)"
)
# [label]: target "title", a reference definition on a line of its own.
DEFINITION = re.compile(r"^ {0,3}\[[^\]]+\]:[ \t]*(<[^>]*>|\S+)", re.M)
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("**/*.md"))]


def slug(heading: str) -> str:
    """The anchor GitHub gives a heading's text, before duplicates are numbered."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link reads as its text
    text = text.replace("`", "").strip().lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def prose(markdown: str) -> list[str]:
    """The lines outside fenced code blocks."""
    lines, fence = [], ""
    for line in markdown.splitlines():
        opened = FENCE.match(line)
        if fence:
            if opened and opened[1][0] == fence[0] and len(opened[1]) >= len(fence):
                fence = ""
        elif opened:
            fence = opened[1]
        else:
            lines.append(line)
    return lines


def anchors(markdown: str) -> set[str]:
    """Every heading's anchor on a page: its slug, then `-1`, `-2`, ... for the same slug again."""
    seen: Counter[str] = Counter()
    found = set()
    for line in prose(markdown):
        heading = HEADING.match(line)
        if heading:
            base = slug(heading[2])
            found.add(f"{base}-{seen[base]}" if seen[base] else base)
            seen[base] += 1
    return found


def links(markdown: str) -> list[str]:
    """The targets of a page's inline links and reference definitions, in order."""
    text = CODE_SPAN.sub("", "\n".join(prose(markdown)))
    targets = [m[1] for m in INLINE.finditer(text)] + [m[1] for m in DEFINITION.finditer(text)]
    return [target.removeprefix("<").removesuffix(">") for target in targets]


def broken_links(root: Path, files: list[Path]) -> list[str]:
    """Each relative link of `files` that names no file or directory under `root`, or no
    heading of the page it names, as `file: target (why)`."""
    broken = []
    for page in files:
        for target in links(page.read_text(encoding="utf-8")):
            if SCHEME.match(target) or target.startswith("//"):
                continue  # http(s), mailto, ...: not ours to check here
            path, _, fragment = target.partition("#")
            where = (page.parent / unquote(path)).resolve() if path else page
            name = f"{page.relative_to(root)}: {target}"
            if not where.is_relative_to(root.resolve()):
                broken.append(f"{name} (outside the repository)")
            elif not where.exists():
                broken.append(f"{name} (no such file or directory)")
            elif (
                fragment
                and where.suffix == ".md"
                and where.is_file()
                and unquote(fragment) not in anchors(where.read_text(encoding="utf-8"))
            ):
                broken.append(f"{name} (no such heading)")
    return broken


def test_every_relative_link_and_anchor_resolves() -> None:
    assert len(pages()) > 1, "no docs/ pages found"
    broken = broken_links(ROOT, pages())
    assert not broken, "broken links:\n" + "\n".join(broken)


@pytest.mark.parametrize(
    ("heading", "expected"),
    [
        ("Coming from a typical hackathon backend", "coming-from-a-typical-hackathon-backend"),
        ("What they cost?", "what-they-cost"),
        ("Security: limits and timeouts", "security-limits-and-timeouts"),
        ("Several tabs, devices and flaky networks", "several-tabs-devices-and-flaky-networks"),
        ("`todo-api serve` and `DATABASE_URL`", "todo-api-serve-and-database_url"),
        ("A request's path", "a-requests-path"),
        ("Tasks, paging & the contract", "tasks-paging--the-contract"),
        ("Against a FastAPI + SQLModel backend", "against-a-fastapi--sqlmodel-backend"),
        ("See [Live updates](live-updates.md)", "see-live-updates"),
        ("Café ünïcode", "café-ünïcode"),
    ],
)
def test_slug_is_githubs(heading: str, expected: str) -> None:
    assert slug(heading) == expected


def test_a_repeated_heading_is_numbered_and_headings_in_code_are_not_headings() -> None:
    page = "# Logs\n\n## Logs\n\n```sh\n# Logs\n```\n\n### Logs ##\n"
    assert anchors(page) == {"logs", "logs-1", "logs-2"}


def test_links_in_code_are_not_links() -> None:
    page = (
        "[a](a.md) and `[b](b.md)` and ``[c](\nc.md)``\n\n"
        "```md\n[d](d.md)\n```\n\n"
        '![e](<e f.png> "title") [g][ref] a lone ` backtick\n\n[h](h.md)\n\n[ref]: g.md#top\n'
    )
    assert links(page) == ["a.md", "e f.png", "h.md", "g.md#top"]


def test_broken_links_are_all_reported(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "src").mkdir()
    (tmp_path / "README.md").write_text(
        "# Front door\n\n## Usage\n\n"
        "[ok](docs/a.md#a-page) [ok](#usage) [ok](src/) [ok](https://example.com/x#y)\n"
        "[gone](docs/missing.md) [bad](docs/a.md#no-such) [bad](#nowhere) [out](../elsewhere)\n"
    )
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n[ok](../README.md#front-door)\n")
    files = [tmp_path / "README.md", tmp_path / "docs" / "a.md"]
    assert broken_links(tmp_path, files) == [
        "README.md: docs/missing.md (no such file or directory)",
        "README.md: docs/a.md#no-such (no such heading)",
        "README.md: #nowhere (no such heading)",
        "README.md: ../elsewhere (outside the repository)",
    ]
