"""Repeat contacts and FCR over one customer's contacts."""

import itertools

from hypothesis import given
from hypothesis import strategies as st

from streams.core.aggregate import COUNT_INDEX
from streams.core.interaction import ContactFacts, End
from streams.core.repeat import (
    CustomerHistory,
    contributions,
    departure_ms,
    next_departure,
    settle,
    update,
)

DAY = 86_400_000
R = 7 * DAY
KEY = ("call", "billing", "-")
REPEAT = COUNT_INDEX["repeat_contacts"]
FCR = COUNT_INDEX["resolved_first_contact"]


def contact(iid, start, reason=None, ends=()):
    return ContactFacts(iid, "c1", reason, start, KEY, tuple(ends))


def resolved(at, escalated=False, transferred=False):
    return End(at, True, escalated, transferred)


def totals(history):
    out = contributions(history, R)
    return (
        sum(n for k, n in out.items() if k[4] == REPEAT),
        sum(n for k, n in out.items() if k[4] == FCR),
    )


def history_of(*contacts):
    return CustomerHistory({c.interaction_id: c for c in contacts})


def test_first_contact_resolved():
    assert totals(history_of(contact("a", 0, ends=[resolved(10)]))) == (0, 1)


def test_second_contact_within_r_is_a_repeat_and_not_fcr():
    h = history_of(
        contact("a", 0, ends=[resolved(10)]), contact("b", 3 * DAY, ends=[resolved(3 * DAY + 5)])
    )
    assert totals(h) == (1, 1)


def test_contact_exactly_r_after_is_a_repeat_and_one_ms_later_is_not():
    assert totals(history_of(contact("a", 0), contact("b", R))) == (1, 0)
    assert totals(history_of(contact("a", 0), contact("b", R + 1))) == (0, 0)


def test_reason_must_match_when_given():
    assert totals(history_of(contact("a", 0, "invoice"), contact("b", DAY, "refund"))) == (0, 0)
    assert totals(history_of(contact("a", 0, "invoice"), contact("b", DAY, "invoice"))) == (1, 0)
    # without a reason, any earlier contact of the customer counts
    assert totals(history_of(contact("a", 0, "invoice"), contact("b", DAY))) == (1, 0)


def test_escalated_or_transferred_resolution_is_not_fcr():
    h = history_of(
        contact("a", 0, ends=[resolved(9, escalated=True)]),
        contact("x", 30 * DAY, ends=[resolved(30 * DAY + 9, transferred=True)]),
    )
    assert totals(h) == (0, 0)


def test_late_earlier_contact_turns_a_resolved_contact_into_a_repeat():
    history = CustomerHistory()
    first = update(history, contact("b", 5 * DAY, ends=[resolved(5 * DAY + 10)]), R)
    assert sum(n for k, n in first.items() if k[4] == FCR) == 1
    change = update(history, contact("a", 4 * DAY), R)
    assert change[("call", "billing", "-", 5 * DAY, REPEAT, 1)] == 1
    assert change[("call", "billing", "-", 5 * DAY + 10, FCR, 1)] == -1


@given(
    st.permutations(
        [
            contact("a", 0, ends=[resolved(100)]),
            contact("b", DAY, ends=[resolved(DAY + 1)]),
            contact("c", 9 * DAY, "x", ends=[resolved(9 * DAY + 1)]),
            contact("d", 9 * DAY + 5, "x"),
        ]
    )
)
def test_sum_of_updates_is_independent_of_order(order):
    history = CustomerHistory()
    net = {}
    for facts in order:
        for item, n in update(history, facts, R).items():
            net[item] = net.get(item, 0) + n
    assert {k: n for k, n in net.items() if n} == dict(contributions(history, R))
    assert totals(history) == (2, 2)


def test_settle_freezes_then_forgets_without_changing_results():
    history = history_of(
        contact("a", 0, ends=[resolved(5)]), contact("b", 2 * DAY, ends=[resolved(2 * DAY + 5)])
    )
    before = contributions(history, R)
    settle(history, clock_ms=R, lateness_ms=600_000, window_ms=R, keep_ms=DAY)
    assert set(history.contacts) == {"a", "b"}  # a started less than R + lateness ago
    settle(history, clock_ms=9 * DAY, lateness_ms=600_000, window_ms=R, keep_ms=DAY)
    assert set(history.contacts) == {"b"} and history.frozen["b"] is True
    assert contributions(history, R) == {k: n for k, n in before.items() if k[3] >= 2 * DAY}


def test_all_orders_of_three_contacts_agree():
    contacts = [
        contact("a", 0, ends=[resolved(1)]),
        contact("b", 2, ends=[resolved(3)]),
        contact("c", 8 * DAY, ends=[resolved(8 * DAY + 1)]),
    ]
    results = set()
    for order in itertools.permutations(contacts):
        history = CustomerHistory()
        for facts in order:
            update(history, facts, R)
        results.add(totals(history))
    assert results == {(1, 2)}


contacts_strategy = st.lists(
    st.tuples(
        st.integers(0, 20 * DAY),
        st.lists(st.integers(0, 3 * DAY), max_size=3),
    ),
    max_size=6,
)


@given(
    contacts_strategy,
    st.integers(0, 40 * DAY),
    st.integers(0, DAY),
    st.integers(1, 10 * DAY),
    st.integers(0, 10 * DAY),
)
def test_settle_forgets_exactly_the_contacts_past_their_departure(
    spec, clock, lateness, window, keep
):
    """The expiry index files a customer by `next_departure`: settling before
    it must change nothing, and at it must forget a contact."""
    history = history_of(
        *(
            contact(f"i{n}", start, ends=[resolved(start + d) for d in ends])
            for n, (start, ends) in enumerate(spec)
        )
    )
    due = {iid: departure_ms(c, lateness, window, keep) for iid, c in history.contacts.items()}
    soonest = next_departure(history, lateness, window, keep)
    assert soonest == min(due.values(), default=None)
    settle(history, clock, lateness, window, keep)
    assert set(history.contacts) == {iid for iid, at in due.items() if at > clock}


def test_a_contact_departs_once_past_the_window_and_quiet_for_the_keep_time():
    c = contact("a", 0, ends=[resolved(3 * DAY)])
    assert departure_ms(c, lateness_ms=10, window_ms=R, keep_ms=DAY) == R + 10 + 1
    assert departure_ms(c, lateness_ms=10, window_ms=DAY, keep_ms=DAY) == 4 * DAY + 1
