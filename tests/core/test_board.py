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
