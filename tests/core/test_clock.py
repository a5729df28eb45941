"""The event-time watermark: held back by the slowest partition that has data,
including one whose backlog has not been read yet."""

from __future__ import annotations

import orjson

from streams.core.clock import SenderClocks, Watermark

IDLE = 3_000


def test_the_slowest_active_partition_holds_the_watermark() -> None:
    w = Watermark(IDLE)
    w.observe("a", 5_000, wall_ms=0)
    w.observe("b", 1_000, wall_ms=0)
    assert w.value(1_000) == 1_000


def test_an_idle_partition_stops_holding_it_back() -> None:
    w = Watermark(IDLE)
    w.observe("a", 5_000, wall_ms=0)
    w.observe("b", 1_000, wall_ms=0)
    w.touch("a", 4_000)
    assert w.value(4_000) == 5_000


def test_a_partition_with_unread_data_holds_it_where_it_is() -> None:
    w = Watermark(IDLE)
    w.observe("a", 5_000, wall_ms=0)
    assert w.value(0) == 5_000
    w.touch("b", 1_000)  # has a backlog, no event time yet
    w.observe("a", 9_000, wall_ms=1_000)
    assert w.value(1_000) == 5_000
    w.observe("b", 2_000, wall_ms=1_500)
    assert w.value(1_500) == 5_000  # never backwards
    w.observe("b", 9_500, wall_ms=1_600)
    assert w.value(1_600) == 9_000


def test_a_pending_partition_that_goes_quiet_is_idle() -> None:
    w = Watermark(IDLE)
    w.observe("a", 5_000, wall_ms=0)
    w.touch("b", 0)
    w.observe("a", 9_000, wall_ms=4_000)
    assert w.value(4_000) == 9_000


def test_reports_from_another_worker_can_be_pending() -> None:
    w = Watermark(IDLE)
    w.report("a", 5_000, 0)
    w.report("b", None, 0)
    w.report("a", 8_000, 500)
    assert w.value(1_000) is None
    w.report("b", 7_000, 900)
    assert w.value(1_000) == 7_000
    w.forget("b")
    assert w.value(1_000) == 8_000


def test_a_partition_last_reported_behind_never_idles_out() -> None:
    w = Watermark(IDLE)
    w.report("a", 5_000, 0, behind=True)  # its reader died with a backlog
    w.report("b", 9_000, 10_000)
    assert w.value(10_000) == 5_000
    w.report("a", 9_500, 11_000)  # the new owner caught up
    assert w.value(11_000) == 9_000


def test_sender_clocks_wait_for_every_sender_and_take_the_lowest() -> None:
    clocks = SenderClocks(["i0", "i1", "c0"])
    clocks.report("i0", 5_000)
    clocks.report("c0", 7_000)
    assert clocks.value() is None
    clocks.report("i1", 6_000)
    assert clocks.value() == 5_000
    clocks.report("i0", 9_000)
    clocks.report("i0", 1_000)  # a sender's clock never goes back
    clocks.report("stranger", 0)
    assert clocks.value() == 6_000


def test_sender_clocks_never_go_back() -> None:
    clocks = SenderClocks(["i0"])
    clocks.report("i0", 5_000)
    assert clocks.value() == 5_000
    assert SenderClocks([]).value() is None
    assert not SenderClocks([])


def test_sender_clocks_come_back_from_the_wire_as_they_were() -> None:
    clocks = SenderClocks(["i0", "i1"])
    clocks.report("i0", 5_000)
    clocks.report("i1", 7_000)
    clocks.report("i1", 8_000)
    wire = orjson.loads(orjson.dumps(clocks.to_wire()))
    again = SenderClocks.from_wire(["i0", "i1", "i2"], wire)
    assert again.value() == 5_000
    again.report("i0", 9_000)
    assert again.value() == 5_000, "a new sender starts unheard and holds it"
    again.report("i2", 9_000)
    assert again.value() == 8_000
    assert SenderClocks.from_wire(["i0"], None).value() is None


def test_holding_names_what_the_watermark_waits_for() -> None:
    w = Watermark(idle_timeout_ms=1_000)
    assert w.holding(0) == []
    w.observe("a", 500, wall_ms=0)
    w.observe("b", 300, wall_ms=0)
    assert w.holding(10) == ["b"]
    w.touch("c", wall_ms=10)  # data, no event time yet: it holds everything
    assert w.holding(20) == ["c"]
    assert w.holding(5_000) == []  # all idle: the watermark is the largest seen


def test_holding_names_the_senders_a_clock_waits_for() -> None:
    clocks = SenderClocks(["i0", "i1", "i2"])
    clocks.report("i1", 40)
    assert clocks.holding() == ["i0", "i2"]
    clocks.report("i0", 70)
    clocks.report("i2", 50)
    assert clocks.holding() == ["i1"]
