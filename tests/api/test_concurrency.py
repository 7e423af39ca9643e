"""Concurrent writers on one task: every state is one a request produced; time never runs back."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from starlette.testclient import TestClient


def test_concurrent_patches_and_toggles_never_mix(
    client: TestClient, alice: dict[str, str], create: Callable[..., dict[str, Any]]
) -> None:
    task = create(title="v-start", description="v-start", priority="low")
    url = f"/api/tasks/{task['id']}"
    seen: list[dict[str, Any]] = []
    stop = threading.Event()

    def write(i: int) -> dict[str, Any]:
        if i % 3 == 0:
            response = client.post(f"{url}/complete", headers=alice)
        else:
            version = f"v{i}"
            priority = ["low", "medium", "high"][i % 3]
            body = {"title": version, "description": version, "priority": priority}
            response = client.patch(url, json=body, headers=alice)
        assert response.status_code == 200, response.text
        return response.json()

    def read() -> None:
        while not stop.is_set():
            seen.append(client.get(url, headers=alice).json())

    reader = threading.Thread(target=read)
    reader.start()
    with ThreadPoolExecutor(max_workers=8) as pool:
        written = list(pool.map(write, range(120)))
    stop.set()
    reader.join()

    final = client.get(url, headers=alice).json()
    for state in [*written, *seen, final]:
        assert state["title"] == state["description"], state  # one PATCH's fields, never two
        assert (state["completed_at"] is not None) is state["completed"], state
    updated = [state["updated_at"] for state in seen]
    assert updated == sorted(updated), "a reader saw updated_at go back"
    assert final["updated_at"] == max(state["updated_at"] for state in written)
    toggles = sum(1 for i in range(120) if i % 3 == 0)
    assert final["completed"] is (toggles % 2 == 1)
