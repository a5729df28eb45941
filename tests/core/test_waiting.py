"""The queue by key against a plain map of every waiting contact, read the
slow way: contact by contact."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from streams.core.contribution import Key
from streams.core.record import Live
from streams.core.waiting import Waiting

KEYS: list[Key] = [("call", "vip", "-"), ("call", "billing", "-"), ("email", "support", "-")]
LIMITS = {KEYS[0]: 10_000.0, KEYS[1]: 7_500.5, KEYS[2]: math.inf}
IIDS = [f"i{n}" for n in range(8)]

operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("wait"), st.sampled_from(IIDS), st.sampled_from(KEYS), st.integers(0, 60_000)
        ),
        st.tuples(st.just("leave"), st.sampled_from(IIDS)),
    ),
    max_size=40,
)


def contact_by_contact(contacts: dict[str, tuple[Key, int]], clock: int | None) -> dict[Key, Live]:
    gauges: dict[Key, Live] = {}
    for key in {key for key, _ in contacts.values()}:
        starts = [start for k, start in contacts.values() if k == key]
        at_risk = 0 if clock is None else sum(clock - s > LIMITS[key] for s in starts)
        gauges[key] = Live(len(starts), min(starts), at_risk)
    return gauges


@given(operations, st.one_of(st.none(), st.integers(0, 90_000)))
def test_the_gauges_are_those_of_every_contact_read_one_by_one(
    steps: list[tuple], clock: int | None
) -> None:
    waiting = Waiting()
    contacts: dict[str, tuple[Key, int]] = {}
    for step in steps:
        if step[0] == "wait":
            _, iid, key, start = step
            waiting.wait(iid, key, start)
            contacts[iid] = (key, start)
        else:
            waiting.leave(step[1])
            contacts.pop(step[1], None)
    assert len(waiting) == len(contacts)
    assert waiting.gauges(clock, LIMITS.__getitem__) == contact_by_contact(contacts, clock)


def test_a_transfer_moves_the_contact_and_an_empty_queue_is_gone() -> None:
    waiting = Waiting()
    waiting.wait("a", KEYS[0], 1_000)
    waiting.wait("a", KEYS[1], 1_000)
    assert waiting.gauges(20_000, LIMITS.__getitem__) == {KEYS[1]: Live(1, 1_000, 1)}
    waiting.leave("a")
    waiting.leave("a")
    assert waiting.gauges(20_000, LIMITS.__getitem__) == {}
    assert len(waiting) == 0


def test_a_contact_is_at_risk_only_once_it_has_waited_longer_than_the_limit() -> None:
    waiting = Waiting()
    waiting.wait("a", KEYS[0], 10_000)
    assert waiting.gauges(20_000, LIMITS.__getitem__)[KEYS[0]].at_risk == 0
    assert waiting.gauges(20_001, LIMITS.__getitem__)[KEYS[0]].at_risk == 1
    assert waiting.gauges(None, LIMITS.__getitem__)[KEYS[0]] == Live(1, 10_000, 0)
