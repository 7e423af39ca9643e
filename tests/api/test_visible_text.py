"""Titles and tags need a visible character, and may not carry bidirectional controls."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from starlette.testclient import TestClient

INVISIBLE = {
    "zero width space": "\u200b",
    "word joiner": "\u2060",
    "soft hyphen": "\u00ad",
    "byte order mark": "\ufeff",
    "zero width joiners and spaces": "\u200d \u200c\u3000\u200b",
    "no-break spaces": "\u00a0\u202f",
    "arabic letter mark": "\u061c",
    "invisible times": "\u2062\u2063",
}
BIDI_CONTROLS = [chr(c) for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]]


@pytest.mark.parametrize("title", INVISIBLE.values(), ids=INVISIBLE)
def test_a_title_with_no_visible_character_is_blank(
    client: TestClient, alice: dict[str, str], title: str
) -> None:
    response = client.post("/api/tasks", json={"title": title}, headers=alice)
    assert response.status_code == 422, response.text
    [error] = response.json()["errors"]
    assert error["pointer"] == "#/title"
    assert error["detail"].startswith("is blank")


@pytest.mark.parametrize("tag", INVISIBLE.values(), ids=INVISIBLE)
def test_a_tag_with_no_visible_character_is_blank(
    client: TestClient, alice: dict[str, str], tag: str
) -> None:
    response = client.post("/api/tasks", json={"title": "t", "tags": [tag]}, headers=alice)
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["pointer"] == "#/tags/0"
    assert response.json()["errors"][0]["detail"].startswith("is blank")


@pytest.mark.parametrize("control", BIDI_CONTROLS, ids=[f"U+{ord(c):04X}" for c in BIDI_CONTROLS])
def test_bidirectional_controls_are_refused_in_titles_and_tags_by_name(
    client: TestClient, alice: dict[str, str], create: Callable[..., dict[str, Any]], control: str
) -> None:
    # "invoice.txt" that displays as "invoice.exe" style spoofing: visible text, hidden order.
    spoof = f"pay {control}gnp.exe"
    task = create(title="t")
    for method, url, body, pointer in [
        ("POST", "/api/tasks", {"title": spoof}, "#/title"),
        ("PATCH", f"/api/tasks/{task['id']}", {"title": spoof}, "#/title"),
        ("POST", "/api/tasks", {"title": "t", "tags": ["ok", spoof[:20]]}, "#/tags/1"),
    ]:
        response = client.request(method, url, json=body, headers=alice)
        assert response.status_code == 422, response.text
        [error] = response.json()["errors"]
        assert error["pointer"] == pointer
        assert "bidirectional control" in error["detail"]
    assert client.get("/api/tasks?tag=" + spoof[:20], headers=alice).status_code == 422


@pytest.mark.parametrize(
    "title",
    ["a\u200b", "\u00adx", "שלום עולם", "مرحبا", "👩\u200d💻", "x\u2060y", "\u200ba\u200b"],
)
def test_visible_text_with_format_characters_and_right_to_left_scripts_is_kept(
    client: TestClient, alice: dict[str, str], title: str
) -> None:
    response = client.post("/api/tasks", json={"title": title, "tags": [title]}, headers=alice)
    assert response.status_code == 201, response.text
    assert response.json()["title"] == title
    assert response.json()["tags"] == [title]
