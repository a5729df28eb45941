"""Ingest takes each input message once per assignment: a message the stall
check read from the log, or one delivered again by a consumer gone back to
the committed offset, is not counted again in `cc_events_total` (nor
`cc_late_events_total`, nor dead-lettered again). A partition assigned anew is
read again from its committed offset, and what comes then is taken."""

from __future__ import annotations

from streams.pipeline.stages import Ingest, Outbox, Stats
from streams.pipeline.wire import event_from_wire
from tests.pipeline.test_ingest_lateness import SETTINGS, T0, started

CALLS0 = ("cc.calls", 0)


def sent(out: Outbox) -> list[str]:
    return [event_from_wire(item).event_id for items in out.interactions.values() for item in items]


def test_a_message_delivered_after_it_was_read_from_the_log_is_taken_once() -> None:
    stats = Stats()
    ingest = Ingest(SETTINGS, stats)
    from_the_log = Outbox()
    ingest.process([(*CALLS0, 5, started(1, T0)), (*CALLS0, 6, b"{")], 0, from_the_log)
    ingest.passed(CALLS0, 7)
    delivered = Outbox()
    messages = [(*CALLS0, 5, started(1, T0)), (*CALLS0, 6, b"{"), (*CALLS0, 7, started(2, T0))]
    ingest.process(messages, 0, delivered)
    assert sent(from_the_log) == ["e1"]
    assert sent(delivered) == ["e2"]
    assert stats.events["cc.calls"] == 2
    assert sum(stats.deadletters.values()) == 1
    assert len(from_the_log.deadletters) == 1 and not delivered.deadletters


def test_partitions_are_told_apart() -> None:
    ingest = Ingest(SETTINGS, Stats())
    ingest.process([(*CALLS0, 9, started(1, T0))], 0, Outbox())
    out = Outbox()
    ingest.process([("cc.calls", 1, 3, started(2, T0)), ("cc.chats", 0, 3, b"[]")], 0, out)
    assert sent(out) == ["e2"]
    assert ingest.taken == {CALLS0: 9, ("cc.calls", 1): 3, ("cc.chats", 0): 3}


def test_a_message_skipped_by_the_group_commit_is_not_taken() -> None:
    """The stall check found the group's committed offset past Faust's record."""
    stats = Stats()
    ingest = Ingest(SETTINGS, stats)
    ingest.passed(CALLS0, 20)
    ingest.process([(*CALLS0, 19, started(1, T0)), (*CALLS0, 20, started(2, T0))], 0, Outbox())
    assert stats.events["cc.calls"] == 1


def test_after_a_new_assignment_the_committed_offset_is_read_again() -> None:
    stats = Stats()
    ingest = Ingest(SETTINGS, stats)
    ingest.process([(*CALLS0, 5, started(1, T0))], 0, Outbox())
    ingest.assigned(CALLS0, 0)
    out = Outbox()
    ingest.process([(*CALLS0, 5, started(1, T0))], 0, out)
    assert sent(out) == ["e1"]
    assert stats.events["cc.calls"] == 2
