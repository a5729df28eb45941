"""Label caps: bounded names per channel, stable decisions, restorable."""

from __future__ import annotations

import random

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.config import ALL, NO_NETWORK, UNKNOWN, LabelLimits, Settings, SlaTable
from streams.core.contribution import Key
from streams.core.labels import CapReport, DistinctCount, LabelCap

SLA = Settings().sla  # twitter has a network override: always allowed
CHANNEL = st.sampled_from(("call", "chat", "social"))
NAME = st.text(alphabet="abcdefgh", min_size=1, max_size=3)
KEYS = st.lists(
    st.tuples(CHANNEL, NAME, NAME).map(
        lambda k: k if k[0] == "social" else (k[0], k[1], NO_NETWORK)
    ),
    max_size=300,
)


def cap(max_queues: int = 3, max_networks: int = 2, **limits: object) -> LabelCap:
    return LabelCap(LabelLimits(max_queues=max_queues, max_networks=max_networks, **limits), SLA)


def test_first_names_keep_their_key_later_ones_fold_into_other():
    c = cap(max_queues=2)
    assert c.key(("call", "a", "-")) == ("call", "a", "-")
    assert c.key(("call", "b", "-")) == ("call", "b", "-")
    assert c.key(("call", "c", "-")) == ("call", "other", "-")
    assert c.key(("call", "a", "-")) == ("call", "a", "-")
    # The cap is per channel.
    assert c.key(("chat", "c", "-")) == ("chat", "c", "-")


def test_networks_fold_independently_of_queues():
    c = cap(max_queues=1, max_networks=1)
    assert c.key(("social", "care", "facebook")) == ("social", "care", "facebook")
    assert c.key(("social", "care", "myspace")) == ("social", "care", "other")
    assert c.key(("social", "sales", "facebook")) == ("social", "other", "facebook")
    # twitter has SLA targets of its own: allowed, never folded.
    assert c.key(("social", "sales", "twitter")) == ("social", "other", "twitter")


def test_reserved_names_pass_through_and_take_no_room():
    c = cap(max_queues=1, max_networks=1)
    for key in [("call", UNKNOWN, NO_NETWORK), ("call", ALL, NO_NETWORK), ("social", "q", UNKNOWN)]:
        assert c.key(key) == key
    assert c.key(("call", "billing", "-")) == ("call", "billing", "-")


def test_allow_listed_and_sla_queues_are_always_kept_and_take_no_room():
    sla = SlaTable(SLA.channels, SLA.networks, {("call", "vip"): {"service_level": 0.95}})
    c = LabelCap(LabelLimits(queues=frozenset({"billing"}), max_queues=1), sla)
    assert c.key(("call", "x", "-")) == ("call", "x", "-")
    assert c.key(("call", "y", "-")) == ("call", "other", "-")
    assert c.key(("call", "billing", "-")) == ("call", "billing", "-")
    assert c.key(("call", "vip", "-")) == ("call", "vip", "-")
    # The SLA queue belongs to its channel only.
    assert c.key(("chat", "z", "-")) == ("chat", "z", "-")
    assert c.key(("chat", "vip", "-")) == ("chat", "other", "-")


def test_a_real_queue_named_like_the_bucket_is_never_admitted_as_a_name():
    c = cap(max_queues=5)
    assert c.key(("call", "other", "-")) == ("call", "other", "-")
    assert c.key(("call", "a", "-")) == ("call", "a", "-")
    assert [r.kept for r in c.report(["call"])] == [1]
    custom = cap(max_queues=0, other="~overflow")
    assert custom.key(("call", "a", "-")) == ("call", "~overflow", "-")


def test_report_counts_kept_and_distinct_folded_names():
    c = cap(max_queues=2, max_networks=1)
    for i in range(10):
        for _ in range(3):
            c.key(("social", f"q{i}", f"n{i}"))
    assert list(c.report(["social", "call"])) == [
        CapReport("social", "queue", kept=2, folded=8),
        CapReport("social", "network", kept=1, folded=9),
    ]
    assert list(c.report([])) == []


def test_distinct_count_is_close_for_large_and_exact_for_small_sets():
    small = DistinctCount()
    for i in range(50):
        small.add(f"name-{i % 20}")
    assert small.estimate() == 20
    big = DistinctCount()
    for i in range(100_000):
        big.add(f"q-{i}")
    assert abs(big.estimate() - 100_000) < 5_000
    assert DistinctCount().estimate() == 0


@settings(max_examples=200, deadline=None)
@given(KEYS, st.integers(0, 4), st.integers(0, 3))
def test_cap_is_never_exceeded_and_decisions_never_change(keys, max_queues, max_networks):
    c = cap(max_queues=max_queues, max_networks=max_networks)
    first: dict[Key, Key] = {}
    for key in keys:
        capped = c.key(key)
        assert first.setdefault(key, capped) == capped
    for channel in {k[0] for k in keys}:
        queues = {capped[1] for key, capped in first.items() if key[0] == channel}
        networks = {capped[2] for key, capped in first.items() if key[0] == channel}
        assert len(queues - {"other"}) <= max_queues
        assert len(networks - {"other", NO_NETWORK, "twitter"}) <= max_networks


@settings(max_examples=200, deadline=None)
@given(KEYS, st.integers(0, 4), st.integers(0, 3), st.integers(0, 300), st.randoms())
def test_restoring_from_the_board_keys_gives_the_same_decisions(
    keys, max_queues, max_networks, cut, rnd
):
    """A worker restarted at any point, from the keys its board holds, decides
    every key (seen before or not) as the one that never stopped."""
    steady = cap(max_queues, max_networks)
    before = cap(max_queues, max_networks)
    board = {before.key(k) for k in keys[:cut]}
    restarted = cap(max_queues, max_networks)
    restored = list(board)
    rnd.shuffle(restored)
    restarted.admit_existing(restored, ["call", "chat", "social"])
    for key in keys[:cut]:
        steady.key(key)
    later = [*keys[cut:], *keys[:cut]]
    assert [restarted.key(k) for k in later] == [steady.key(k) for k in later]


def test_restore_keeps_names_beyond_a_lowered_cap_and_forgets_taken_over_channels():
    c = cap(max_queues=1)
    c.key(("chat", "stale", "-"))
    c.admit_existing([("call", "a", "-"), ("call", "b", "-"), ("call", "other", "-")], ["chat"])
    assert c.key(("call", "b", "-")) == ("call", "b", "-")
    assert c.key(("call", "c", "-")) == ("call", "other", "-")
    assert c.channels() == {"call"}
    assert c.key(("chat", "fresh", "-")) == ("chat", "fresh", "-")
    assert c.key(("chat", "stale", "-")) == ("chat", "other", "-")


def test_a_flood_of_random_names_stays_within_the_cap():
    rng = random.Random(3)
    c = cap(max_queues=50, max_networks=20)
    keys = {
        c.key(("social", f"q{rng.randrange(10**9)}", f"n{rng.randrange(10**9)}"))
        for _ in range(20_000)
    }
    assert len(keys) <= (50 + 1) * (20 + 1)
