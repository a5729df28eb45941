"""Interaction lifecycle: every KPI rule of kpis.md on small, explicit stories."""

import itertools
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.config import Settings
from streams.contract.event import Event
from streams.core.aggregate import COUNT_INDEX, FRT, HANDLE, NEXT_RESPONSE, RESOLUTION
from streams.core.interaction import (
    _RANK,
    Rules,
    contact_facts,
    contributions,
    interaction_key,
    last_activity,
    ordered,
    waiting_since,
)

RULES = Rules(short_abandon_ms=5_000, sla=Settings().sla)
T0 = 1_700_000_000_000
_ids = itertools.count()


def ev(kind, at, channel="call", **fields):
    fields.setdefault("event_id", f"e{next(_ids)}")
    return Event(
        type=kind, ts=T0 + at, interaction_id=fields.pop("iid", "i1"), channel=channel, **fields
    )


def start(at=0, channel="call", **fields):
    fields.setdefault("customer_id", "c1")
    fields.setdefault("queue", "billing")
    return ev("contact.started", at, channel, **fields)


def counts(events):
    """{count name: total} and the measured values per code."""
    out = contributions(ordered(events), RULES)
    names = {v: k for k, v in COUNT_INDEX.items()}
    totals: Counter = Counter()
    measured: dict[int, list[int]] = {}
    for (_c, _q, _n, _ts, code, value), n in out.items():
        if code in names:
            totals[names[code]] += value * n
        else:
            measured.setdefault(code, []).extend([value] * n)
    return totals, measured


def test_answered_within_target_counts_volume_answer_and_frt():
    totals, measured = counts([start(), ev("agent.responded", 12_000, agent_id="a")])
    assert totals == {"started": 1, "answered": 1, "answered_within_target": 1}
    assert measured[FRT] == [12_000]


def test_answer_after_the_channel_threshold_is_not_within_target():
    totals, _ = counts([start(), ev("agent.responded", 30_001, agent_id="a")])
    assert totals["answered"] == 1 and totals["answered_within_target"] == 0


def test_threshold_is_inclusive():
    totals, _ = counts([start(), ev("agent.responded", 30_000, agent_id="a")])
    assert totals["answered_within_target"] == 1


def test_short_abandon_is_counted_on_its_own():
    totals, _ = counts([start(), ev("contact.abandoned", 4_999)])
    assert totals == {"started": 1, "short_abandoned": 1}


def test_abandon_after_the_short_limit_is_an_abandon():
    totals, _ = counts([start(), ev("contact.abandoned", 5_000)])
    assert totals == {"started": 1, "abandoned": 1}


def test_response_before_abandon_means_answered():
    totals, _ = counts(
        [start(), ev("agent.responded", 10_000, agent_id="a"), ev("contact.abandoned", 20_000)]
    )
    assert totals["answered"] == 1 and totals["abandoned"] == 0


def test_abandon_before_a_late_response_stays_abandoned():
    totals, _ = counts(
        [start(), ev("contact.abandoned", 20_000), ev("agent.responded", 30_000, agent_id="a")]
    )
    assert totals["abandoned"] == 1 and totals["answered"] == 0


def test_first_response_is_the_earliest_whatever_the_arrival_order():
    events = [
        start(),
        ev("agent.responded", 50_000, agent_id="a"),
        ev("agent.responded", 20_000, agent_id="b"),
    ]
    _, measured = counts(events)
    assert measured[FRT] == [20_000]


def test_next_response_from_first_unanswered_customer_message():
    events = [
        start(channel="email"),
        ev("agent.responded", 1_000, "email", agent_id="a"),
        ev("customer.messaged", 10_000, "email"),
        ev("customer.messaged", 15_000, "email"),
        ev("agent.responded", 40_000, "email", agent_id="a"),
        ev("customer.messaged", 50_000, "email"),
        ev("agent.responded", 51_000, "email", agent_id="a"),
    ]
    _, measured = counts(events)
    assert sorted(measured[NEXT_RESPONSE]) == [1_000, 30_000]


def test_end_counts_escalation_transfer_resolution_and_handle_time():
    events = [
        start(),
        ev("agent.responded", 5_000, agent_id="a"),
        ev("contact.transferred", 60_000, to_queue="support"),
        ev("contact.escalated", 70_000, level="2"),
        ev(
            "contact.ended",
            300_000,
            resolved=True,
            talk_seconds=250.5,
            hold_seconds=10,
            wrap_seconds=20.25,
        ),
    ]
    totals, measured = counts(events)
    assert totals["ended"] == totals["escalated"] == totals["transferred"] == 1
    assert totals["resolved"] == 1
    assert measured[HANDLE] == [280_750_000]
    assert measured[RESOLUTION] == [300_000]


def test_unresolved_end_has_no_resolution_time():
    totals, measured = counts([start(), ev("contact.ended", 9_000, resolved=False)])
    assert totals["resolved"] == 0 and RESOLUTION not in measured and HANDLE not in measured


def test_reopen_then_second_end_counts_two_ends():
    events = [
        start(channel="email"),
        ev("contact.ended", 10_000, "email", resolved=True),
        ev("contact.reopened", 20_000, "email"),
        ev("contact.ended", 30_000, "email", resolved=True),
    ]
    totals, _ = counts(events)
    assert totals["ended"] == 2 and totals["resolved"] == 2 and totals["reopened"] == 1


def test_second_end_without_reopen_is_ignored():
    events = [
        start(),
        ev("contact.ended", 10_000, resolved=True),
        ev("contact.ended", 20_000, resolved=False),
    ]
    totals, _ = counts(events)
    assert totals["ended"] == 1 and totals["resolved"] == 1


@pytest.mark.parametrize(
    ("answers", "expected"),
    [
        ({"csat": 4}, {"csat_answers": 1, "csat_satisfied": 1}),
        ({"csat": 3}, {"csat_answers": 1}),
        ({"nps": 9}, {"nps_answers": 1, "nps_promoters": 1}),
        ({"nps": 7}, {"nps_answers": 1}),
        ({"nps": 6}, {"nps_answers": 1, "nps_detractors": 1}),
        ({"ces": 6}, {"ces_answers": 1}),
    ],
)
def test_survey_answers(answers, expected):
    totals, _ = counts([ev("survey.answered", 0, channel="chat", queue="sales", **answers)])
    assert totals == expected


def test_survey_without_channel_takes_the_interaction_key():
    events = [
        start(channel="chat", queue="sales"),
        ev("survey.answered", 9_000, channel=None, csat=5),
    ]
    out = contributions(ordered(events), RULES)
    keys = {(c, q, n) for (c, q, n, _ts, code, _v) in out if code == COUNT_INDEX["csat_answers"]}
    assert keys == {("chat", "sales", "-")}


def test_survey_of_unknown_interaction_counts_under_unknown():
    out = contributions([ev("survey.answered", 0, channel=None, csat=2)], RULES)
    assert {(c, q) for (c, q, *_rest) in out} == {("unknown", "unknown")}


def test_social_key_carries_the_network():
    events = [
        start(channel="social", queue="care", network="twitter"),
        ev("agent.responded", 3_600_000, "social", agent_id="a"),
    ]
    out = contributions(ordered(events), RULES)
    assert {(c, q, n) for (c, q, n, *_r) in out} == {("social", "care", "twitter")}
    within = [k for k in out if k[4] == COUNT_INDEX["answered_within_target"]]
    assert len(within) == 1  # twitter target is 1 h, inclusive


def test_event_without_start_is_used_where_it_can_be():
    totals, _ = counts([ev("contact.ended", 10_000, resolved=True)])
    assert totals == {"ended": 1, "resolved": 1}


def test_contributions_do_not_depend_on_arrival_order():
    events = [
        start(),
        ev("agent.responded", 9_000, agent_id="a"),
        ev("contact.escalated", 20_000),
        ev("contact.ended", 90_000, resolved=True),
        ev("survey.answered", 100_000, csat=5, channel="call", queue="billing"),
    ]
    reference = contributions(ordered(events), RULES)
    for permutation in itertools.permutations(events):
        assert contributions(ordered(permutation), RULES) == reference


def test_facts_for_repeat_logic():
    events = ordered(
        [
            start(reason="invoice"),
            ev("contact.transferred", 5_000),
            ev("contact.ended", 9_000, resolved=True),
        ]
    )
    facts = contact_facts("i1", events)
    assert facts is not None
    assert facts.customer_id == "c1" and facts.reason == "invoice" and facts.start_ts == T0
    assert [(e.resolved, e.escalated, e.transferred) for e in facts.ends] == [(True, False, True)]
    assert contact_facts("i1", ordered([ev("contact.ended", 0, resolved=True)])) is None


def test_waiting_until_answered_abandoned_or_ended():
    assert waiting_since([start(at=5)]) == (("call", "billing", "-"), T0 + 5)
    for closing in ("agent.responded", "contact.abandoned", "contact.ended"):
        extra = {"agent_id": "a"} if closing == "agent.responded" else {}
        if closing == "contact.ended":
            extra = {"resolved": False}
        assert waiting_since(ordered([start(), ev(closing, 9, **extra)])) is None


def test_last_activity_tells_open_from_closed():
    assert last_activity([start()]) == (T0, False)
    assert last_activity(ordered([start(), ev("contact.abandoned", 9)])) == (T0 + 9, True)
    ended = ordered([start(), ev("contact.ended", 9, resolved=True)])
    assert last_activity(ended) == (T0 + 9, True)
    reopened = ordered([*ended, ev("contact.reopened", 20)])
    assert last_activity(reopened) == (T0 + 20, False)


def routed_by(events):
    """interaction_key as kpis.md words it, without the shortcut for a start that comes first."""
    lifecycle = [e for e in events if e.type != "survey.answered"]
    starts = [e for e in lifecycle if e.type == "contact.started"]
    start = starts[0] if starts else None
    channel = start.channel if start else next((e.channel for e in lifecycle if e.channel), None)
    if channel is None:
        return None
    queue = (start.queue if start else None) or next(
        (e.queue for e in lifecycle if e.queue), "unknown"
    )
    if channel != "social":
        return channel, queue, "-"
    network = (start.network if start else None) or next(
        (e.network for e in lifecycle if e.network), "unknown"
    )
    return channel, queue, network


_maybe = st.one_of(st.none(), st.just(""), st.sampled_from(["a", "b"]))


@given(
    st.lists(
        st.builds(
            lambda kind, at, channel, queue, network: ev(
                kind, at, channel, queue=queue, network=network
            ),
            st.sampled_from(sorted(_RANK)),
            st.integers(0, 5),
            st.sampled_from([None, "call", "social"]),
            _maybe,
            _maybe,
        ),
        max_size=6,
    )
)
def test_interaction_key_is_decided_as_the_contract_says(events):
    ordered_events = ordered(events)
    assert interaction_key(ordered_events) == routed_by(ordered_events)
