"""A refetch whose client call fails or never answers is tried again with new
clients, and the stage gets its answer (streams.pipeline.refetch).
tests/integration/test_refetch.py reads a real log."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
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
    refetcher = Refetcher({"bootstrap_servers": "127.0.0.1:1"}, admin_attempt_s=0.3)
    try:
        answer = asyncio.run(asyncio.wait_for(refetcher.ends({("calls", 0)}), 10))
        assert answer == {("calls", 0): 42}
    finally:
        never.set()
        refetcher.close()
    assert len(clients_seen) == 2
    assert clients_seen[0] is not clients_seen[1]


def test_a_peer_that_never_answers_costs_retries_not_the_process(tmp_path) -> None:
    """The real kafka-python client against a socket that accepts and never
    answers, with its own timeouts at 10 minutes: each attempt is given up
    after the deadline, and the process still exits at once."""
    program = tmp_path / "never_answers.py"
    program.write_text(
        "import asyncio, logging, socket, time\n"
        "from streams.pipeline.refetch import Refetcher\n"
        "logging.basicConfig(level=logging.WARNING)\n"
        "peer = socket.socket()\n"
        "peer.bind(('127.0.0.1', 0))\n"
        "peer.listen(16)\n"
        "address = '127.0.0.1:%d' % peer.getsockname()[1]\n"
        "refetcher = Refetcher({'bootstrap_servers': address, 'request_timeout_ms': 600_000,\n"
        "                       'bootstrap_timeout_ms': 600_000}, admin_attempt_s=1.0)\n"
        "async def main():\n"
        "    try:\n"
        "        await asyncio.wait_for(refetcher.ends({('calls', 0)}), 4.5)\n"
        "    except TimeoutError:\n"
        "        print('still retrying', flush=True)\n"
        "asyncio.run(main())\n"
        "refetcher.close()\n"
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(program)], capture_output=True, text=True, timeout=60
    )
    assert (done.returncode, done.stdout) == (0, "still retrying\n"), done.stderr
    assert (
        done.stderr.count("reading end offsets failed (TimeoutError('no answer within 1 s'))") >= 2
    )
    assert time.monotonic() - started < 30
