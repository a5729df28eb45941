"""Lateness with the event clock: an event is late only when it is older than
the lateness both behind the watermark and behind its own partition's newest
event, so a partition read late (a dead worker's backlog, taken over after
the others ran ahead) is not thrown away as late."""

from __future__ import annotations

from dataclasses import replace

import orjson

from streams.config import Settings
from streams.pipeline.stages import Ingest, Outbox, Stats, unread

SETTINGS = replace(Settings(), clock="event")
T0 = 1_767_225_600_000
MINUTE = 60_000


def started(n: int, ts: int) -> bytes:
    return orjson.dumps(
        {
            "event_id": f"e{n}",
            "type": "contact.started",
            "ts": ts,
            "interaction_id": f"i{n}",
            "customer_id": "c",
            "queue": "support",
        }
    )


def test_a_partition_read_late_is_not_judged_by_one_that_ran_ahead() -> None:
    stats = Stats()
    ingest = Ingest(SETTINGS, stats)
    out = Outbox()
    ingest.process([("cc.calls", 0, 0, started(1, T0 + 60 * MINUTE))], 0, out)
    wall = SETTINGS.idle_timeout_ms + 1  # cc.calls/0 has gone quiet
    # The backlog of cc.calls/1, far behind: counted.
    ingest.process([("cc.calls", 1, 0, started(2, T0))], wall, out)
    # Behind its own partition by more than the lateness: late.
    ingest.process([("cc.calls", 1, 1, started(3, T0 - 11 * MINUTE))], wall, out)
    ingest.process([("cc.calls", 0, 1, started(4, T0 + 49 * MINUTE))], wall, out)
    # Within the lateness of its own partition: counted.
    ingest.process([("cc.calls", 1, 2, started(5, T0 - 9 * MINUTE))], wall, out)
    assert stats.events["cc.calls"] == 3
    assert stats.late["cc.calls"] == 2


def test_a_partition_with_a_backlog_holds_the_watermark() -> None:
    ingest = Ingest(SETTINGS, Stats())
    out = Outbox()
    ingest.process([("cc.calls", 0, 0, started(1, T0))], 0, out)
    assert ingest.clock(500) == T0
    ingest.assigned(("cc.calls", 1), 500)
    ingest.process([("cc.calls", 0, 1, started(2, T0 + MINUTE))], 1_000, out)
    assert ingest.clock(1_000) == T0
    ingest.behind([("cc.calls", 1)], 10 * SETTINGS.idle_timeout_ms)
    assert ingest.clock(10 * SETTINGS.idle_timeout_ms) == T0
    progress = {(t, p): (ts, behind) for t, p, ts, _idle, behind in ingest.progress(0)}
    assert progress[("cc.calls", 1)] == (None, True)


def test_a_partition_taken_over_holds_the_clocks_until_its_backlog_is_read() -> None:
    """Not read from since its assignment (its recovery can outlast the idle
    timeout), with messages past its committed offset: behind."""
    calls0, calls1, calls2, calls3 = (("cc.calls", p) for p in range(4))
    behind = unread(
        [calls0, calls1, calls2, calls3],
        ends={calls0: 100, calls1: 500, calls2: 40, calls3: 70},
        read={calls0: 99, calls1: 200},
        committed={calls2: 12, calls3: 70},
    )
    assert behind == [calls1, calls2]


def test_a_partition_whose_end_is_not_known_yet_holds_the_clocks() -> None:
    """Right after an assignment, before the broker said where its log ends
    and before its first records came: it may hold the oldest events."""
    assert unread([("cc.calls", 0)], ends={}, read={}, committed={}) == [("cc.calls", 0)]


def test_a_partition_whose_delivered_batch_waits_holds_the_watermark() -> None:
    """Faust delivered the last messages of cc.calls/1, but their batch waits
    (for the lock, a read from the log): read is what was processed, so the
    partition is behind and the clock does not pass its events, however long
    since it last delivered."""
    calls0, calls1 = ("cc.calls", 0), ("cc.calls", 1)
    ingest = Ingest(SETTINGS, Stats())
    out = Outbox()
    ingest.process([(*calls1, 0, started(1, T0))], 0, out)
    ingest.process([(*calls0, 0, started(2, T0 + 60 * MINUTE))], 0, out)
    assert ingest.taken == {calls1: 0, calls0: 0}
    wall = 10 * SETTINGS.idle_timeout_ms
    ends = {calls0: 1, calls1: 3}  # cc.calls/1's offsets 1 and 2 wait in a batch
    ingest.behind(unread([calls0, calls1], ends, ingest.taken, committed={}), wall)
    assert ingest.clock(wall) == T0
    ingest.process([(*calls1, 1, started(3, T0 + MINUTE)), (*calls1, 2, b"{")], wall, out)
    assert ingest.taken[calls1] == 2, "a dead-lettered message is processed too"
    ingest.behind(unread([calls0, calls1], ends, ingest.taken, committed={}), wall)
    assert ingest.clock(wall) == T0 + MINUTE
    ingest.forget(*calls1)
    assert calls1 not in ingest.taken


def test_a_partition_assigned_again_is_read_from_its_committed_offset() -> None:
    """A batch taken before a rebalance, processed after the partition was
    revoked, leaves a position; once assigned again, the partition is read
    from its committed offset, and that re-read holds the watermark."""
    calls0 = ("cc.calls", 0)
    ingest = Ingest(SETTINGS, Stats())
    ingest.forget(*calls0)
    ingest.process([(*calls0, 40, started(1, T0))], 0, Outbox())
    ingest.assigned(calls0, 0)
    assert unread([calls0], {calls0: 41}, ingest.taken, committed={calls0: 10}) == [calls0]


def test_a_partition_read_from_the_log_to_its_end_holds_the_watermark_no_more() -> None:
    """Faust's record of the committed offset lags the group's (or a range
    read from the log had no more records): what the stall check found done
    is done, and a position already further on stays."""
    calls0, calls1 = ("cc.calls", 0), ("cc.calls", 1)
    ingest = Ingest(SETTINGS, Stats())
    ends = {calls0: 41, calls1: 41}
    committed = {calls0: 10, calls1: 10}
    assert unread([calls0, calls1], ends, ingest.taken, committed) == [calls0, calls1]
    ingest.passed(calls0, 41)
    ingest.process([(*calls1, 40, started(1, T0))], 0, Outbox())
    ingest.passed(calls1, 30)
    assert ingest.taken == {calls0: 40, calls1: 40}
    assert unread([calls0, calls1], ends, ingest.taken, committed) == []
