"""The board's settled totals: late contributions, and corrections too late to apply."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.config import load_settings
from streams.core.aggregate import COUNT_INDEX, Aggregate
from streams.core.board import SETTLE, Board

SETTINGS = load_settings(env={})
KEY = ("chat", "billing", "-")
FCR = COUNT_INDEX["resolved_first_contact"]
MINUTE = 60_000


def board() -> Board:
    return Board([5 * MINUTE, 60 * MINUTE], 10, 10 * MINUTE, SETTINGS.sla)


def settled_fcr(b: Board) -> int:
    return dict(b.settled()).get(KEY, Aggregate()).count("resolved_first_contact")


def test_a_correction_within_the_settling_margin_is_applied() -> None:
    b = board()
    b.apply(KEY, 0, FCR, 1, 1)
    b.advance(5 * MINUTE, ["chat"])
    b.apply(KEY, 0, FCR, 1, -1)
    b.advance(60 * MINUTE, ["chat"])
    assert settled_fcr(b) == 0
    assert not b.dropped


def test_a_correction_after_its_bucket_settled_is_dropped_and_counted() -> None:
    b = board()
    b.apply(KEY, 0, FCR, 1, 1)
    b.advance(60 * MINUTE, ["chat"])
    assert settled_fcr(b) == 1
    b.apply(KEY, 0, FCR, 1, -1)
    assert settled_fcr(b) == 1
    assert b.dropped == {("chat", "resolved_first_contact"): 1}


def test_a_contribution_after_its_bucket_settled_counts_in_the_totals() -> None:
    b = board()
    b.advance(60 * MINUTE, ["chat"])
    b.apply(KEY, 0, FCR, 1, 2)
    assert settled_fcr(b) == 2
    assert not b.dropped


@given(st.data())
def test_settled_totals_never_go_down_and_account_for_every_contribution(
    data: st.DataObject,
) -> None:
    """Whatever the order and the clock, every contribution is in the settled
    totals, still in the settling ring, or counted as dropped; and the settled
    count only grows. (A retraction only ever takes back an earlier addition.)"""
    b = board()
    added: list[int] = []
    applied = 0
    last = 0
    for _ in range(data.draw(st.integers(0, 40))):
        if added and data.draw(st.booleans()):
            ts = added.pop(data.draw(st.integers(0, len(added) - 1)))
            weight = -1
        else:
            ts = data.draw(st.integers(0, 90 * MINUTE))
            added.append(ts)
            weight = 1
        b.apply(KEY, ts, FCR, 1, weight)
        applied += weight
        b.advance(data.draw(st.integers(0, 90 * MINUTE)), ["chat"])
        now = settled_fcr(b)
        assert now >= last
        last = now
    pending = (
        sum(
            bucket.count("resolved_first_contact")
            for bucket in b.keys[KEY].rings[SETTLE].buckets.values()
        )
        if KEY in b.keys
        else 0
    )
    dropped = b.dropped[("chat", "resolved_first_contact")]
    assert settled_fcr(b) + pending == applied + dropped


def restored(b: Board) -> Board:
    """A new board holding `b`'s key as the changelog has it."""
    state = b.keys[KEY]
    buckets = [(ring, i, agg) for ring, window in state.rings.items() for i, agg in window.items()]
    fresh = board()
    fresh.restore_key(KEY, buckets, state.settled)
    return fresh


def test_a_resumed_channel_is_served_at_once_and_settles_on_its_own_clock() -> None:
    """Its windows stand where they were committed; its settling ring waits for
    the board's own clock, so a correction to a bucket settled before the
    hand-over still applies, as long as it comes before that clock."""
    before = board()
    before.apply(KEY, 0, FCR, 1, 1)
    before.apply(KEY, 55 * MINUTE, FCR, 1, 1)
    before.advance(60 * MINUTE, ["chat"])
    assert settled_fcr(before) == 1
    after = restored(before)
    after.resume(60 * MINUTE, ["chat"])
    assert after.records({5 * MINUTE: "5m", 60 * MINUTE: "1h"}) == before.records(
        {5 * MINUTE: "5m", 60 * MINUTE: "1h"}
    )
    after.apply(KEY, 0, FCR, 1, -1)
    after.advance(30 * MINUTE, ["chat"])
    assert after.clocks["chat"] == 60 * MINUTE, "the windows never go back"
    after.advance(60 * MINUTE, ["chat"])
    assert settled_fcr(after) == 0
    assert not after.dropped
    after.apply(KEY, 0, FCR, 1, -1)
    assert after.dropped, "once settled on its own clock, a late correction is too late"
