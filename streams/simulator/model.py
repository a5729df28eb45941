"""A discrete-event model of a contact center that emits contract events.

Nothing here is a coin flip about outcomes that should emerge: contacts arrive
as a Poisson process whose rate follows the intraday profile (and surges);
they wait in a FIFO queue for one of the agents the staffing schedule puts on
duty; call and chat customers give up when their (exponential) patience runs
out before an agent takes them, so abandonment and service level follow from
load and staffing. Email and social contacts wait for agents who only work
their shifts, and go back and forth (customer replies, reopens), so their
response times follow from backlog and business hours. Unresolved contacts
bring the same customer back days later (repeat contacts, FCR), and survey
scores fall with the wait and the outcome.

The model is pure: it yields event dicts (with `ts` as epoch ms) in event-time
order and knows nothing of Kafka or files. Everything random comes from one
`random.Random(seed)`, so a seed reproduces a run exactly.
"""

from __future__ import annotations

import math
import random
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from heapq import heapify, heappop, heappush
from itertools import count
from typing import Any, Final

from streams.contract.event import (
    ABANDONED,
    CUSTOMER_MESSAGED,
    ENDED,
    ESCALATED,
    REOPENED,
    RESPONDED,
    STARTED,
    SURVEY,
    TRANSFERRED,
)
from streams.simulator.scenario import HOUR_MS, SYNC_CHANNELS, QueueSpec, Scenario
from streams.simulator.surveys import answers, satisfaction

MAX_EXCHANGES: Final = 5
"""Async contacts: at most this many customer replies before the agent closes."""

_WAITING: Final = 1
_SERVING: Final = 2
_OVER: Final = 3


@dataclass(slots=True, eq=False)
class _Contact:
    iid: str
    customer: str
    home: _Desk  # the queue it started in: every KPI is attributed there
    reason: str | None
    network: str | None
    start: int
    desk: _Desk = field(init=False)  # where it is now (moves on a transfer)
    state: int = 0
    token: int = 0  # which wait a pending give-up belongs to (a transfer waits again)
    first_response: int | None = None
    transferred: bool = False
    escalated: bool = False
    ended: bool = False
    exchanges: int = 0
    talk_ms: int = 0
    hold_ms: int = 0

    def __post_init__(self) -> None:
        self.desk = self.home


@dataclass(slots=True, eq=False)
class _Desk:
    """The agents of one queue and the contacts waiting for them.

    Work goes to slots (agent x concurrency); slots above the current staffing
    finish what they hold and then go off duty.
    """

    spec: QueueSpec
    surges: list[tuple[int, int, float, str | None]]
    reason_names: list[str]
    reason_weights: list[float]
    network_names: list[str]
    network_weights: list[float]
    mu: float
    sigma: float
    slots: int = 0
    idle: list[int] = field(default_factory=list)
    busy: set[int] = field(default_factory=set)
    waiting: deque[tuple[_Contact, int]] = field(default_factory=deque)
    agents: dict[int, str] = field(default_factory=dict)

    @property
    def sync(self) -> bool:
        return self.spec.channel in SYNC_CHANNELS

    def agent(self, slot: int) -> str:
        name = self.agents.get(slot)
        if name is None:
            number = slot // self.spec.concurrency
            name = self.agents[slot] = f"{self.spec.channel}-{self.spec.name}-{number:03d}"
        return name


def _desk(spec: QueueSpec, scenario: Scenario, start_ms: int) -> _Desk:
    sigma = math.sqrt(math.log1p(spec.handle_cv**2))
    surges = [
        (start_ms + s.at_ms, start_ms + s.at_ms + s.duration_ms, s.factor, s.network)
        for s in scenario.surges
        if s.queue == spec.key
    ]
    return _Desk(
        spec=spec,
        surges=surges,
        reason_names=[name for name, _ in spec.reasons],
        reason_weights=[w for _, w in spec.reasons],
        network_names=[name for name, _ in spec.networks],
        network_weights=[w for _, w in spec.networks],
        mu=math.log(spec.handle_ms) - sigma * sigma / 2,
        sigma=sigma,
    )


class Simulation:
    """One run of a scenario: `events()` yields its events in event-time order."""

    def __init__(
        self,
        scenario: Scenario,
        seed: int,
        start_ms: int | None = None,
        duration_ms: int | None = None,
    ) -> None:
        self.scenario = scenario
        self.rng = random.Random(seed)
        self.start = scenario.start_ms if start_ms is None else start_ms
        self.end = self.start + (scenario.duration_ms if duration_ms is None else duration_ms)
        self.run_id = f"{scenario.name}-{seed}"
        self.now = self.start
        self.desks = {spec.key: _desk(spec, scenario, self.start) for spec in scenario.queues}
        self._heap: list[tuple[int, int, Callable[[Any], None], Any]] = []
        self._seq = count()
        self._event_ids = count(1)
        self._contact_ids = count(1)
        self._customer_ids = count(1)
        self._out: list[dict[str, Any]] = []

    def events(self) -> Iterator[dict[str, Any]]:
        for desk in self.desks.values():
            self._at(self.start, self._shift, desk)
            self._next_arrival(desk, self.start)
        heap = self._heap
        out = self._out
        end = self.end
        while heap:
            at, _, action, arg = heappop(heap)
            if at >= end:
                return
            self.now = at
            action(arg)
            if out:
                yield from out
                out.clear()

    # --- scheduling and emitting -------------------------------------------------

    def _at(self, at: int, action: Callable[[Any], None], arg: Any) -> None:
        heappush(self._heap, (at, next(self._seq), action, arg))

    def _emit(self, kind: str, contact: _Contact, extra: dict[str, Any] | None = None) -> None:
        event = {
            "event_id": f"{self.run_id}-e{next(self._event_ids)}",
            "type": kind,
            "ts": self.now,
            "interaction_id": contact.iid,
            "channel": contact.home.spec.channel,
            "customer_id": contact.customer,
        }
        if extra:
            event.update(extra)
        self._out.append(event)

    def _later(self, at: int, kind: str, contact: _Contact, extra: dict[str, Any]) -> None:
        self._at(at, self._emit_due, (kind, contact, extra))

    def _emit_due(self, arg: tuple[str, _Contact, dict[str, Any]]) -> None:
        self._emit(*arg)

    def _work(self, desk: _Desk) -> int:
        """One log-normal work time with the queue's mean and variation."""
        if desk.sigma == 0:
            return desk.spec.handle_ms
        return max(1000, int(self.rng.lognormvariate(desk.mu, desk.sigma)))

    def _around(self, mean_ms: int) -> int:
        return int(mean_ms * self.rng.uniform(0.5, 1.5)) if mean_ms else 0

    # --- demand ------------------------------------------------------------------

    def _rate(self, desk: _Desk, at: int) -> tuple[float, int, float, str | None]:
        """(contacts per ms, until when it holds, surge factor, surge network) at `at`."""
        until = at - at % HOUR_MS + HOUR_MS
        factor = 1.0
        network = None
        for begin, finish, surge_factor, surge_network in desk.surges:
            if begin <= at < finish:
                factor *= surge_factor
                network = network or surge_network
                until = min(until, finish)
            elif begin > at:
                until = min(until, begin)
        spec = desk.spec
        rate = spec.rate * spec.profile[at // HOUR_MS % 24] * factor / HOUR_MS
        return rate, until, factor, network

    def _next_arrival(self, desk: _Desk, at: int) -> None:
        """Piecewise-constant Poisson rate: an exponential gap that crosses a rate
        change is redrawn from there (exact, because the process has no memory)."""
        while at < self.end:
            rate, until, _, _ = self._rate(desk, at)
            if rate > 0:
                candidate = at + int(self.rng.expovariate(rate)) + 1
                if candidate < until:
                    self._at(candidate, self._arrive, desk)
                    return
            at = until

    def _arrive(self, desk: _Desk) -> None:
        rng = self.rng
        _, _, factor, surge_network = self._rate(desk, self.now)
        network = None
        if desk.network_names:
            if surge_network is not None and rng.random() < 1 - 1 / factor:
                network = surge_network
            else:
                network = rng.choices(desk.network_names, desk.network_weights)[0]
        reason = None
        if desk.reason_names:
            reason = rng.choices(desk.reason_names, desk.reason_weights)[0]
        customer = f"{self.run_id}-c{next(self._customer_ids)}"
        self._start(_Contact(self._new_id(), customer, desk, reason, network, self.now))
        self._next_arrival(desk, self.now)

    def _new_id(self) -> str:
        return f"{self.run_id}-i{next(self._contact_ids)}"

    def _start(self, contact: _Contact) -> None:
        extra: dict[str, Any] = {"queue": contact.home.spec.name}
        if contact.reason is not None:
            extra["reason"] = contact.reason
        if contact.network is not None:
            extra["network"] = contact.network
        self._emit(STARTED, contact, extra)
        self._offer(contact.home, contact, patient=True)

    def _come_back(self, previous: _Contact) -> None:
        """The same customer, about the same need, in a new contact."""
        home = previous.home
        contact = _Contact(
            self._new_id(), previous.customer, home, previous.reason, previous.network, self.now
        )
        self._start(contact)

    # --- queueing ------------------------------------------------------------------

    def _offer(self, desk: _Desk, contact: _Contact, patient: bool) -> None:
        contact.desk = desk
        if desk.idle:
            slot = heappop(desk.idle)
            desk.busy.add(slot)
            self._serve(desk, contact, slot)
            return
        contact.state = _WAITING
        contact.token += 1
        desk.waiting.append((contact, contact.token))
        patience = desk.spec.patience_ms
        if patient and patience:
            give_up = self.now + int(self.rng.expovariate(1 / patience)) + 1
            self._at(give_up, self._give_up, (contact, contact.token))

    def _give_up(self, arg: tuple[_Contact, int]) -> None:
        contact, token = arg
        if contact.state != _WAITING or contact.token != token:
            return
        contact.state = _OVER
        self._emit(ABANDONED, contact)
        repeat = self.scenario.repeat
        if self.rng.random() < repeat.after_abandoned:
            delay = int(self.rng.expovariate(1 / repeat.retry_delay_ms)) + 1
            self._at(self.now + delay, self._come_back, contact)

    def _next_waiting(self, desk: _Desk) -> _Contact | None:
        waiting = desk.waiting
        while waiting:
            contact, token = waiting.popleft()
            if contact.state == _WAITING and contact.token == token:
                return contact
        return None

    def _release(self, desk: _Desk, slot: int) -> None:
        desk.busy.discard(slot)
        if slot >= desk.slots:
            return  # off duty now
        contact = self._next_waiting(desk)
        if contact is None:
            heappush(desk.idle, slot)
        else:
            desk.busy.add(slot)
            self._serve(desk, contact, slot)

    def _free(self, arg: tuple[_Desk, int]) -> None:
        self._release(*arg)

    def _shift(self, desk: _Desk) -> None:
        """Staffing changes: new slots take waiting contacts at once; removed idle slots leave."""
        staffing = desk.spec.staffing
        slots = staffing.agents_at(self.now) * desk.spec.concurrency
        if slots > desk.slots:
            for slot in range(desk.slots, slots):
                if slot not in desk.busy:
                    heappush(desk.idle, slot)
        elif slots < desk.slots:
            desk.idle = [slot for slot in desk.idle if slot < slots]
            heapify(desk.idle)
        desk.slots = slots
        while desk.idle and (contact := self._next_waiting(desk)) is not None:
            slot = heappop(desk.idle)
            desk.busy.add(slot)
            self._serve(desk, contact, slot)
        following = staffing.next_change(self.now)
        if following < self.end:
            self._at(following, self._shift, desk)

    def _serve(self, desk: _Desk, contact: _Contact, slot: int) -> None:
        contact.state = _SERVING
        if desk.sync:
            self._talk(desk, contact, slot)
        else:
            self._at(self.now + self._work(desk), self._reply, (desk, contact, slot))

    # --- call and chat -------------------------------------------------------------

    def _talk(self, desk: _Desk, contact: _Contact, slot: int) -> None:
        spec = desk.spec
        rng = self.rng
        answered = self.now + self._around(spec.pickup_ms)
        self._later(answered, RESPONDED, contact, {"agent_id": desk.agent(slot)})
        if contact.first_response is None:
            contact.first_response = answered
        talk = self._work(desk)
        if spec.channel == "chat":
            self._chat_messages(contact, answered, talk, desk.agent(slot))
        if not contact.transferred and spec.transfer and rng.random() < spec.transfer:
            at = answered + int(talk * rng.uniform(0.2, 0.6))
            contact.talk_ms += at - answered
            self._later(at, TRANSFERRED, contact, {"to_queue": spec.transfer_to})
            self._at(at, self._transfer, (desk, contact, slot))
            return
        if not contact.escalated and spec.escalate and rng.random() < spec.escalate:
            contact.escalated = True
            at = answered + int(talk * rng.uniform(0.3, 0.8))
            self._later(at, ESCALATED, contact, {"level": "2"})
            talk += self._work(desk) // 2  # the second tier takes its time too
        hold = 0
        if spec.hold_share and rng.random() < spec.hold_share:
            hold = int(rng.expovariate(1 / spec.hold_ms))
        contact.talk_ms += talk
        contact.hold_ms += hold
        self._at(answered + talk + hold, self._hang_up, (desk, contact, slot))

    def _chat_messages(self, contact: _Contact, answered: int, talk: int, agent: str) -> None:
        """A few customer messages, each answered, spread over the chat."""
        exchanges = self.rng.randint(1, 4)
        step = talk // (exchanges + 1)
        for number in range(1, exchanges + 1):
            said = answered + number * step
            self._later(said, CUSTOMER_MESSAGED, contact, {})
            reply = said + int(step * self.rng.uniform(0.1, 0.6))
            self._later(reply, RESPONDED, contact, {"agent_id": agent})

    def _transfer(self, arg: tuple[_Desk, _Contact, int]) -> None:
        desk, contact, slot = arg
        contact.transferred = True
        self._release(desk, slot)
        target = self.desks[f"{desk.spec.channel}/{desk.spec.transfer_to}"]
        self._offer(target, contact, patient=False)

    def _hang_up(self, arg: tuple[_Desk, _Contact, int]) -> None:
        desk, contact, slot = arg
        spec = desk.spec
        wrap = self._around(spec.wrap_ms)
        extra: dict[str, Any] = {
            "agent_id": desk.agent(slot),
            "talk_seconds": contact.talk_ms / 1000,
        }
        if spec.channel == "call":
            extra["hold_seconds"] = contact.hold_ms / 1000
            extra["wrap_seconds"] = wrap / 1000
        self._close(desk, contact, extra)
        if wrap:
            self._at(self.now + wrap, self._free, (desk, slot))
        else:
            self._release(desk, slot)

    # --- email and social ----------------------------------------------------------

    def _reply(self, arg: tuple[_Desk, _Contact, int]) -> None:
        desk, contact, slot = arg
        spec = desk.spec
        rng = self.rng
        agent = desk.agent(slot)
        self._release(desk, slot)
        if not contact.transferred and spec.transfer and rng.random() < spec.transfer:
            contact.transferred = True
            self._emit(TRANSFERRED, contact, {"to_queue": spec.transfer_to})
            self._offer(self.desks[f"{spec.channel}/{spec.transfer_to}"], contact, patient=False)
            return
        self._emit(RESPONDED, contact, {"agent_id": agent})
        if contact.first_response is None:
            contact.first_response = self.now
        if not contact.escalated and spec.escalate and rng.random() < spec.escalate:
            contact.escalated = True
            self._emit(ESCALATED, contact, {"level": "2"})
        if contact.exchanges < MAX_EXCHANGES and rng.random() < spec.reply:
            contact.exchanges += 1
            delay = int(rng.expovariate(1 / spec.reply_delay_ms)) + 1
            self._at(self.now + delay, self._customer_writes, contact)
            return
        self._close(desk, contact, {"agent_id": agent})

    def _customer_writes(self, contact: _Contact) -> None:
        self._emit(CUSTOMER_MESSAGED, contact)
        self._offer(contact.desk, contact, patient=False)

    def _reopen(self, contact: _Contact) -> None:
        self._emit(REOPENED, contact)
        self._offer(contact.desk, contact, patient=False)

    # --- the end of a contact ----------------------------------------------------------

    def _close(self, desk: _Desk, contact: _Contact, extra: dict[str, Any]) -> None:
        """contact.ended; the first end also decides survey, repeat contact and reopen."""
        spec = desk.spec
        rng = self.rng
        resolved = rng.random() < (spec.escalated_resolve if contact.escalated else spec.resolve)
        self._emit(ENDED, contact, {"resolved": resolved, **extra})
        contact.state = _OVER
        if contact.ended:
            return
        contact.ended = True
        scenario = self.scenario
        surveys = scenario.surveys
        if rng.random() < surveys.response_rate:
            wait = (contact.first_response or self.now) - contact.start
            score = satisfaction(
                rng,
                surveys,
                spec.channel,
                wait,
                resolved,
                contact.transferred,
                contact.escalated,
            )
            at = self.now + int(rng.expovariate(1 / surveys.delay_ms)) + 1
            self._later(
                at, SURVEY, contact, {"queue": contact.home.spec.name, **answers(rng, score)}
            )
        repeat = scenario.repeat
        if rng.random() < (repeat.after_resolved if resolved else repeat.after_unresolved):
            at = self.now + int(rng.expovariate(1 / repeat.delay_ms)) + 1
            self._at(at, self._come_back, contact)
        if resolved and not desk.sync and spec.reopen and rng.random() < spec.reopen:
            at = self.now + int(rng.expovariate(1 / spec.reopen_delay_ms)) + 1
            self._at(at, self._reopen, contact)
