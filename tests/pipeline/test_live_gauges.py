"""The live queue gauges of an interactions partition, against a contact-by-
contact count, over keys with different targets (or none)."""

from dataclasses import replace

from hypothesis import given
from hypothesis import strategies as st

from streams.config import Settings, SlaTable
from streams.core.waiting import Waiting
from streams.pipeline.stages import Interactions, Stats
from tests.pipeline.harness import DictStore

WALL = 2_000_000_000_000
SLA = SlaTable(
    channels=Settings().sla.channels,
    networks={"twitter": {"frt_seconds": 600}},
    queues={("call", "vip"): {"frt_seconds": 10}, ("chat", "bots"): {"frt_seconds": None}},
)
SETTINGS = replace(Settings(), sla=SLA, at_risk_share=0.75)
KEYS = [
    ("call", "vip", "-"),
    ("call", "billing", "-"),
    ("chat", "bots", "-"),
    ("chat", "sales", "-"),
    ("social", "care", "twitter"),
    ("social", "care", "facebook"),
    ("unknown", "unknown", "-"),
]


@given(st.lists(st.tuples(st.sampled_from(KEYS), st.integers(0, 3 * 3_600_000)), max_size=60))
def test_live_gauges_count_each_waiting_contact(waiting: list[tuple[tuple, int]]) -> None:
    stage = Interactions(SETTINGS, DictStore(), Stats())
    stage.waiting[0] = Waiting()
    for n, (key, waited) in enumerate(waiting):
        stage.waiting[0].wait(f"i{n}", key, WALL - waited)
    gauges = stage.live(0, WALL)
    assert set(gauges) == {key for key, _ in waiting}
    for key, live in gauges.items():
        waits = [waited for k, waited in waiting if k == key]
        target = SLA.targets(*key).frt_seconds
        assert live.queue_now == len(waits)
        assert live.oldest_start_ms == WALL - max(waits)
        at_risk = 0 if target is None else sum(w > target * 1000 * 0.75 for w in waits)
        assert live.at_risk == at_risk, key
