"""A refetch whose client call fails or never answers is tried again with new
clients, and the stage gets its answer (streams.pipeline.refetch). The call
is replaced here; tests/integration/test_refetch.py reads a real log."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from streams.pipeline import refetch
from streams.pipeline.refetch import Refetcher


@pytest.mark.parametrize("trouble", ["never answers", "raises"])
def test_a_failed_attempt_is_retried_with_new_clients(
    monkeypatch: pytest.MonkeyPatch, trouble: str
) -> None:
    never = threading.Event()
    clients_seen: list[Any] = []

    def ends(clients: Any, tps: set[tuple[str, int]]) -> dict[tuple[str, int], int]:
        clients_seen.append(clients)
        if len(clients_seen) == 1:
            if trouble == "raises":
                raise ConnectionError("broker gone")
            never.wait()
        return dict.fromkeys(tps, 42)

    monkeypatch.setattr(refetch, "_ends", ends)
    monkeypatch.setattr(refetch, "RETRY_S", 0.0)
    refetcher = Refetcher({"bootstrap_servers": "127.0.0.1:1"}, attempt_s=0.3)
    try:
        answer = asyncio.run(asyncio.wait_for(refetcher.ends({("calls", 0)}), 10))
        assert answer == {("calls", 0): 42}
    finally:
        never.set()
        refetcher.close()
    assert len(clients_seen) == 2
    assert clients_seen[0] is not clients_seen[1]
