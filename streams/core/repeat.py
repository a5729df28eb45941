"""Repeat contacts and first-contact resolution, from one customer's contacts.

A contact is a repeat when another contact of the same customer (with the same
reason, when this one has a reason) started in the R days before it started.
A resolved end counts as first-contact-resolved when the contact was not a
repeat, not escalated and not transferred before that end.

Like the interaction lifecycle this is a pure function of the set of contacts,
so the pipeline sends on only the difference when a contact arrives or changes.
Once a contact's start is older than the allowed lateness no new contact can
land before it any more; its repeat flag can be frozen, which lets contacts
older than R leave the state without changing anyone's result.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from streams.core.aggregate import COUNT_INDEX
from streams.core.contribution import Contributions, add, difference
from streams.core.interaction import ContactFacts

_REPEAT = COUNT_INDEX["repeat_contacts"]
_FCR = COUNT_INDEX["resolved_first_contact"]


@dataclass(slots=True)
class CustomerHistory:
    """A customer's recent contacts by interaction id, and the frozen repeat flags."""

    contacts: dict[str, ContactFacts] = field(default_factory=dict)
    frozen: dict[str, bool] = field(default_factory=dict)


def _is_repeat(contact: ContactFacts, others: Iterable[ContactFacts], window_ms: int) -> bool:
    since = contact.start_ts - window_ms
    for other in others:
        if (
            other.interaction_id != contact.interaction_id
            and since <= other.start_ts < contact.start_ts
            and (contact.reason is None or other.reason == contact.reason)
        ):
            return True
    return False


def repeat_flags(history: CustomerHistory, window_ms: int) -> dict[str, bool]:
    contacts = history.contacts.values()
    return {
        iid: history.frozen[iid]
        if iid in history.frozen
        else _is_repeat(contact, contacts, window_ms)
        for iid, contact in history.contacts.items()
    }


def contributions(history: CustomerHistory, window_ms: int) -> Contributions:
    out: Contributions = {}
    flags = repeat_flags(history, window_ms)
    for iid, contact in history.contacts.items():
        channel, queue, network = contact.key
        repeat = flags[iid]
        if repeat:
            add(out, (channel, queue, network, contact.start_ts, _REPEAT, 1))
        for end in contact.ends:
            if end.resolved and not (repeat or end.escalated or end.transferred):
                add(out, (channel, queue, network, end.ts, _FCR, 1))
    return out


def update(history: CustomerHistory, facts: ContactFacts, window_ms: int) -> Contributions:
    """Record a new or changed contact; returns the change in contributions
    (negative counts are retractions)."""
    before = contributions(history, window_ms)
    history.contacts[facts.interaction_id] = facts
    after = contributions(history, window_ms)
    return difference(after, before)


def settle(
    history: CustomerHistory, clock_ms: int, lateness_ms: int, window_ms: int, keep_ms: int
) -> None:
    """Forget contacts nobody can still look back to (started before
    clock - lateness - R) and quiet for `keep_ms`. First freeze the flags that
    depended on them: those contacts started before clock - lateness, so no
    contact can still arrive before them. Freezing only when something goes
    keeps a margin of R against clocks that run ahead on another path."""
    # The start alone rules out most contacts, without building their ends.
    forget_before = clock_ms - lateness_ms - window_ms
    gone = [
        iid
        for iid, contact in history.contacts.items()
        if contact.start_ts < forget_before
        and departure_ms(contact, lateness_ms, window_ms, keep_ms) <= clock_ms
    ]
    if not gone:
        return
    flags = repeat_flags(history, window_ms)
    for iid, contact in history.contacts.items():
        if contact.start_ts < clock_ms - lateness_ms:
            history.frozen[iid] = flags[iid]
    for iid in gone:
        del history.contacts[iid]
        history.frozen.pop(iid, None)


def departure_ms(contact: ContactFacts, lateness_ms: int, window_ms: int, keep_ms: int) -> int:
    """The earliest clock at which `settle` forgets `contact`."""
    last = max([contact.start_ts, *(end.ts for end in contact.ends)])
    return max(contact.start_ts + lateness_ms + window_ms, last + keep_ms) + 1


def next_departure(
    history: CustomerHistory, lateness_ms: int, window_ms: int, keep_ms: int
) -> int | None:
    """The earliest clock at which `settle` forgets a contact of `history`; None
    for a history without contacts."""
    return min(
        (departure_ms(c, lateness_ms, window_ms, keep_ms) for c in history.contacts.values()),
        default=None,
    )
