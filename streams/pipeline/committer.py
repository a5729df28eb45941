"""One durable step per interval for a stage: its outputs, then its state, then
its input offsets.

Committing per batch made every batch wait a producer round trip and wrote an
entity's state (a board bucket, an interaction) once per batch that touched it.
A stage now takes its batches without acknowledging them (Faust commits only
acknowledged offsets), and every `interval` seconds, under the stage's lock:

1. waits until Kafka has every message the stage sent (its outputs);
2. writes its state (the changelog, last write per key) and waits until Kafka
   has it;
3. acknowledges the batches, so that Faust's next offset commit may pass them.

A crash anywhere in between leaves offsets behind the state and the state
behind the outputs: the batches are read again, and what they send again
carries the same positions (sender, offset, index) and is dropped downstream
(README, "Guarantees").

A batch whose work fails half done (a send raises, the agent is cancelled)
leaves the stage's memory ahead of what it sent: its state, and its clock. The
stage is then `broken`: nothing of it is committed any more, and its clocks
and reports stay unsent, until the worker is restarted and reads the batch
again. A commit or a progress report slipping out between the failure and the
worker's exit would make durable a state, or a clock, that no output backs.

A stage also commits as soon as its pending state is `full`, so that a commit
(a partition's writes, streams.pipeline.table_store) stays a few MiB however
fast the stage goes.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any


class Committer:
    def __init__(
        self,
        flush: Callable[[], Awaitable[Any]],
        write_state: Callable[[], Awaitable[Any]],
        interval_s: float,
        full: Callable[[], bool] = lambda: False,
    ) -> None:
        self.flush = flush
        self.write_state = write_state
        self.interval_s = interval_s
        self.full = full
        self.lock = asyncio.Lock()
        """Held from a state change to its commit, so that a commit never makes a
        batch's state durable before that batch's output."""
        self.pending: list[tuple[Any, Sequence[Any]]] = []
        self.last = time.monotonic()
        self.broken = False

    @contextlib.asynccontextmanager
    async def working(self) -> AsyncIterator[None]:
        """`lock`, held for a batch's work; the stage is `broken` if it fails."""
        async with self.lock:
            try:
                yield
            except BaseException:
                self.broken = True
                raise

    def hold(self, stream: Any, events: Sequence[Any]) -> None:
        """Events processed but not durable yet (acknowledged by `commit_locked`)."""
        self.pending.append((stream, events))

    async def processed(self, stream: Any, events: Sequence[Any]) -> None:
        """A batch's work is done (only with `lock` held): hold it, and commit if
        the interval has passed."""
        self.hold(stream, events)
        if self.due:
            await self.commit_locked()

    @property
    def due(self) -> bool:
        return time.monotonic() - self.last >= self.interval_s or self.full()

    async def commit(self) -> None:
        async with self.lock:
            await self.commit_locked()

    async def commit_locked(self) -> None:
        """Only with `lock` held. Does nothing once the stage is broken."""
        if self.broken:
            return
        await self.flush()
        await self.write_state()
        # Under the lock nothing was held meanwhile; on an error above, nothing
        # is acknowledged.
        pending, self.pending = self.pending, []
        self.last = time.monotonic()
        for stream, events in pending:
            for event in events:
                await stream.ack(event)
