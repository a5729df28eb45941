"""The Faust app: topics, tables, and thin agents around the stages.

Run with `faust -A streams.pipeline.app worker` (or `cc-kpi worker`).
Every agent takes events in batches, hands them to a stage, then sends what the
stage put in its outboxes, one message per target partition and batch
(streams.pipeline.outgoing). Tables are written explicitly per source partition
(`send_changelog`), never through `table[key] = ...`, because a batch mixes
partitions and Faust would otherwise use the partition of the last event.
"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import functools
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

import faust
import orjson
from aiokafka import TopicPartition
from aiokafka.errors import KafkaError
from faust.events import Event
from faust.types import TP
from faust.types.tuples import ConsumerMessage
from faust.utils.terminal import SpinnerHandler
from faust.web import Request, Response, View
from prometheus_client import CONTENT_TYPE_LATEST

from streams.config import CHANNELS, UNKNOWN, ConfigError, format_duration, load_settings
from streams.connections import async_redis_client, faust_credentials, kafka_args
from streams.core.board import key_of_record
from streams.core.record import iso
from streams.pipeline import garbage, transport
from streams.pipeline.alignment import InputAlignment
from streams.pipeline.backpressure import InputHold, MessageSizes, backlog
from streams.pipeline.changelog import BatchedChangelog
from streams.pipeline.committer import Committer
from streams.pipeline.compaction import PER_STEP, Compaction
from streams.pipeline.continuity import STALL_S, Continuity, Stalls, waiting
from streams.pipeline.heap import JemallocStats
from streams.pipeline.memory import release_free_memory
from streams.pipeline.outgoing import Outgoing
from streams.pipeline.refetch import Record, Refetcher
from streams.pipeline.stages import (
    BoardStage,
    Customers,
    DeadLetter,
    Ingest,
    Interactions,
    Outbox,
    SlaTracker,
    Stats,
    unread,
)
from streams.pipeline.table_store import TableStore
from streams.pipeline.topics import MAX_RECORD_BYTES, TABLES, repartition_topics
from streams.pipeline.wire import channel_partitions, partition_for
from streams.publish.prometheus import Exposition, registry
from streams.publish.redis_sink import RedisSink
from streams.publish.text_format import generate_latest

try:
    settings = load_settings()
except ConfigError as error:
    print(f"cc-kpi: bad configuration: {error}", file=sys.stderr)
    raise SystemExit(2) from None

log = logging.getLogger(__name__)

# `kill -QUIT <pid>` (as for a JVM's thread dump): every thread's stack to
# stderr (the worker's log), even while the event loop is blocked, when
# Faust's own task dump (SIGUSR1) cannot run; the worker goes on. For a worker
# that stops moving or does not stop. (mode takes SIGUSR2 for its debugger.)
faulthandler.register(signal.SIGQUIT, all_threads=True)
N = settings.internal_partitions
BATCH_ITEMS = 1000
"""Events or contributions per internal message: keeps messages far below 1 MiB."""
STAGE_BATCH = 50
"""Internal messages a later stage takes at once. Each carries up to
BATCH_ITEMS, all decoded together: 50 rather than 200 cut the peak RSS of a
replay by a third and was faster too (docs/benchmarks.md, "Smaller stage
batches")."""


class PipelineApp(transport.App):
    async def on_stop(self) -> None:
        """Every stop, on a signal or a crash, ends within
        `pipeline.stop_timeout` (`_stop_deadline`)."""
        _stop_deadline(settings.stop_timeout_ms)
        await super().on_stop()

    async def _consumer_wait_empty(self, consumer: Any, logger: Any) -> None:
        """Faust waits here, on a stop and on a rebalance, until every message
        taken is acknowledged; the stages acknowledge at their commits, and on a
        stop the `commit` timer has already ended. So the stages commit while
        Faust waits: a SIGTERM stops the worker at once instead of after
        Faust's wait times out (overrides a private method of faust-streaming
        0.15, pinned in pyproject.toml)."""
        done = asyncio.Event()
        committing = asyncio.ensure_future(_commit_until(done))
        try:
            await super()._consumer_wait_empty(consumer, logger)
        finally:
            done.set()
            await committing


EXIT_STOP_TIMED_OUT = os.EX_TEMPFAIL


def _stop_deadline(timeout_ms: int) -> None:
    """A stop waits for Kafka at each step (the stages' flushes and commits,
    the last snapshot, the producer's flush, leaving the group), so with Kafka
    unreachable it would wait for good, until a SIGKILL that says nothing. Past
    `timeout_ms` the process exits without the rest, in a thread of its own
    (the event loop may be the one waiting): what it had not committed is read
    again at the next start, as after a `kill -9`, and nothing is lost."""

    def give_up() -> None:
        log.error(
            "stop not done within %s (pipeline.stop_timeout), is Kafka reachable? "
            "The worker exits (status %d) without the rest; what it had not "
            "committed is read again at the next start",
            format_duration(timeout_ms),
            EXIT_STOP_TIMED_OUT,
        )
        logging.shutdown()
        os._exit(EXIT_STOP_TIMED_OUT)

    timer = threading.Timer(timeout_ms / 1000, give_up)
    timer.daemon = True
    timer.start()


MAX_FETCH_BYTES = 128 * 1024
"""Per partition and fetch. With Faust's 1 MiB, one fetch of one partition of
the benchmark's replay was 17 hours of event time, read ahead of the clocks
and held in memory; with 128 KiB (and the Java client's default 16 KiB record
batches) the worker held about a fifth less after 2M and 10M events and at
its peaks, at no cost in throughput on batches (docs/benchmarks.md, "A 128 KiB
fetch as the default"). A record batch larger than this still comes whole,
one per fetch."""

app = PipelineApp(
    settings.app_id,
    broker=f"kafka://{settings.kafka_bootstrap}",
    broker_credentials=faust_credentials(settings),
    store="memory://",
    datadir=settings.data_dir,
    topic_partitions=N,
    table_standby_replicas=0,
    producer_acks=-1,
    consumer_auto_offset_reset="earliest",
    web_bind=settings.metrics_addr,
    web_port=settings.metrics_port,
    web_host=settings.metrics_addr,
    stream_buffer_maxsize=8192,
    # At most this many records per fetch from the consumer's buffer (Faust's
    # default: all of them, up to 1 MB per partition): Faust delivers what it
    # took into the agents' buffers even once they are full, so this bounds
    # how far ingest's buffer can overflow while input is held (`_while_held`).
    broker_max_poll_records=1000,
    consumer_max_fetch_size=MAX_FETCH_BYTES,
    producer_max_request_size=MAX_RECORD_BYTES,
    broker_commit_interval=1.0,
)


def _raw_topic(name: str, internal: bool) -> faust.TopicT:
    return app.topic(
        name,
        key_type=bytes,
        value_type=bytes,
        key_serializer="raw",
        value_serializer="raw",
        internal=internal,
        partitions=N if internal else None,
    )


topics = settings.topics
input_topic = app.topic(
    *topics.inputs(),
    key_type=bytes,
    value_type=bytes,
    key_serializer="raw",
    value_serializer="raw",
)
# `cc-kpi worker` creates these three before the worker starts (streams.pipeline.topics).
by_interaction, by_customer, kpi_deltas = (
    _raw_topic(name, internal=True) for name in repartition_topics(settings.app_id)
)
kpis_out = _raw_topic(topics.kpis, internal=False)
sla_out = _raw_topic(topics.sla, internal=False)
deadletter_out = _raw_topic(topics.deadletter, internal=False)


def _table(name: str) -> faust.Table:
    return app.Table(
        name,
        key_type=str,
        value_type=bytes,
        partitions=N,
        extra_topic_configs=TABLES[name],
    )


interaction_table = _table("interactions")
customer_table = _table("customers")
board_table = _table("board")
sla_table = _table("sla")


stats = Stats()
ingest_stage = Ingest(settings, stats)


def _kafka_producer() -> Any:
    return app.producer._ensure_producer()


interaction_changelog = BatchedChangelog(interaction_table, _kafka_producer)
customer_changelog = BatchedChangelog(customer_table, _kafka_producer)
board_changelog = BatchedChangelog(board_table, _kafka_producer)
interaction_store = TableStore(interaction_changelog)
customer_store = TableStore(customer_changelog)
sla_store = TableStore(sla_table)
interaction_stage = Interactions(settings, interaction_store, stats)
SENDERS = [f"i{p}" for p in range(N)]
"""The interaction partitions, as named in the messages they send."""
customer_stage = Customers(settings, customer_store, stats, senders=SENDERS)
board_store = TableStore(board_changelog)
board_stage = BoardStage(
    settings, board_store, stats, senders=[*SENDERS, *(f"c{p}" for p in range(N))]
)
sla_tracker = SlaTracker(settings, sla_store)
redis_sink = RedisSink(async_redis_client(settings), settings.redis_ttl_ms)
last_snapshot_ms: int | None = None
published_keys: set[bytes] = set()
owned: dict[str, set[int]] = {}
"""Per stage input topic: the partitions its stage has adopted (see `_own`)."""
lost: set[tuple[str, int]] = set()
"""Adopted partitions that an assignment since then did not include."""
input_sources: set[tuple[str, int]] = set()
background: set[asyncio.Future[None]] = set()
"""Tasks started from synchronous code, kept until done."""
input_ends: dict[tuple[str, int], int] = {}
"""End offsets of the input partitions, asked of the broker at their assignment
and every 2 s (`_refresh_input_ends`)."""
CHANNEL_PARTITIONS = channel_partitions(N)


@app.task
async def quiet_root_logger() -> None:
    """With `-l warn` or above, Faust's worker sets the root logger to DEBUG for
    its start-up spinner and leaves it there: every debug call of aiokafka and
    Faust then builds a record nobody shows (11-18 % of the CPU in the profiles
    of docs/benchmarks.md). Back to the level the real handlers show."""
    handlers = [h for h in logging.root.handlers if not isinstance(h, SpinnerHandler)]
    shown = min((h.level for h in handlers), default=logging.WARNING)
    logging.root.setLevel(max(logging.root.level, shown))


@app.task
async def collect_garbage_less_often() -> None:
    """Once the app is up (streams.pipeline.garbage): CPython's default
    thresholds cost the stages about 40 % of their CPU."""
    garbage.tune()


def now_ms() -> int:
    return int(time.time() * 1000)


recovered = {"state": False}
"""Whether the tables hold every assigned partition: false from a rebalance's
start until Faust's recovery of it is complete (`rebalancing` and
`in_recovery` alone leave a gap between the two)."""


@app.on_partitions_revoked.connect
async def _revoked(sender: Any, revoked: Any = None, **kwargs: Any) -> None:
    # A rebalance starts with a revocation (possibly of nothing); its recovery
    # can complete before the assignment signal goes out, so not that one.
    recovered["state"] = False
    for tp in revoked or ():
        continuity.forget(tp)
    # After a rebalance Faust reads each input partition again from its last
    # committed offset: messages read before it, whose work was not committed
    # (some were still in Faust's buffers and never processed), come again.
    # Judged by the position read before, they would look late and be
    # dropped; so their positions are forgotten, as for a new assignment.
    for tp in revoked or ():
        if (tp.topic, tp.partition) in input_sources:
            ingest_stage.forget(tp.topic, tp.partition)
            input_sources.discard((tp.topic, tp.partition))
            input_ends.pop((tp.topic, tp.partition), None)


@app.on_partitions_assigned.connect
async def _assigned(sender: Any, assigned: Any = None, **kwargs: Any) -> None:
    # A partition adopted, then assigned elsewhere, may come back after other
    # workers wrote its table: its stage's memory is stale by then, even if
    # `_sync` never saw it go.
    now = {(tp.topic, tp.partition) for tp in assigned or ()}
    for topic, partitions in owned.items():
        lost.update((topic, p) for p in partitions if (topic, p) not in now)


@app.on_rebalance_complete.connect
async def _rebalance_complete(sender: Any, **kwargs: Any) -> None:
    recovered["state"] = True


def _ready() -> bool:
    return recovered["state"] and not app.rebalancing and not app.in_recovery


def _sync() -> None:
    """Adopt newly assigned partitions and release revoked ones, per stage; not
    while a rebalance or a recovery is under way (a batch taken before it may
    still be in hand), when the tables do not hold those partitions yet."""
    if not _ready():
        return
    actives: set[TP] = app.assignor.assigned_actives()
    for topic, (_, release) in STAGE_PARTITIONS.items():
        current = {tp.partition for tp in actives if tp.topic == topic}
        before = owned.setdefault(topic, set())
        for partition in sorted(before - current):
            release(partition)
        owned[topic] = before & current
        for partition in sorted(current):
            _own(topic, partition)
    inputs = {(tp.topic, tp.partition) for tp in actives if tp.topic in topics.inputs()}
    before_inputs = input_sources.copy()
    wall = now_ms()
    new_inputs = inputs - before_inputs
    for source in sorted(new_inputs):
        ingest_stage.assigned(source, wall)
    if new_inputs:
        learning = asyncio.ensure_future(_learn_ends(new_inputs))
        background.add(learning)
        learning.add_done_callback(background.discard)
    for source in before_inputs - inputs:
        ingest_stage.forget(*source)
        input_ends.pop(source, None)
    input_sources.clear()
    input_sources.update(inputs)


async def _learn_ends(sources: set[tuple[str, int]]) -> None:
    """Where the logs of newly assigned input partitions end: until then, or
    until their first records (which tell Faust), they hold the clocks."""
    ends = await end_reader.ends(sources)
    input_ends.update((source, end) for source, end in ends.items() if source in input_sources)


def _own(topic: str, partition: int) -> None:
    """Make sure the stage reading `topic` has adopted `partition` since it last
    came to this worker. The agents call it for every batch too: Faust resumes a
    partition's messages once its tables hold it, which can be before the
    rebalance is over and `_sync` adopts it; a stage that applied them to
    memory it had not rebuilt would lose the recovered state, or count a
    message again that the recovered state already holds."""
    held = owned.setdefault(topic, set())
    if partition in held and (topic, partition) not in lost:
        return
    adopt, release = STAGE_PARTITIONS[topic]
    if partition in held:
        release(partition)
    adopt(partition)
    held.add(partition)
    lost.discard((topic, partition))


continuity = Continuity()
"""Each partition's next offset, for every stage (streams.pipeline.continuity)."""
refetcher = Refetcher(kafka_args(settings))
end_reader = Refetcher(kafka_args(settings))
"""Clients of their own for the input ends asked every 2 s: a slow answer
there does not hold the stages' reads of missing messages."""


def _committed(tp: TP) -> int:
    """Faust's record of the committed offset of `tp`: 0 for none, and until
    the recovery after an assignment is over (Faust keeps no public accessor
    for it)."""
    return app.consumer._committed_offset.get(tp) or 0


STALL_READ_MAX = 5000
"""Messages read from the log per stalled partition and check."""
stalls = Stalls(STALL_S)
ingest_stream: list[faust.StreamT] = []
"""The ingest agent's stream: it acknowledges what `read_stalled_inputs` reads."""


async def _in_order(batch: Any) -> list[Any]:
    """The messages of a batch, each preceded by those of its partition that
    the consumer lost before it, read from the log (streams.pipeline.refetch)."""
    new = {event.message.tp for event in batch if not continuity.known(event.message.tp)}
    if new:
        # Faust resumed these partitions at their committed offsets: messages
        # lost before the first one delivered are found too.
        starts = await refetcher.starts(app.conf.id, {(tp.topic, tp.partition) for tp in new})
        for tp in new:
            continuity.start(tp, starts[(tp.topic, tp.partition)])
    kept = []
    for event in batch:
        message = event.message
        tp = message.tp
        missing = continuity.missing(tp, message.offset)
        if missing:
            records = await refetcher.read(tp.topic, tp.partition, missing.start, missing.stop)
            if not records:
                continuity.has_gaps(tp)
            else:
                stats.input_gaps[tp.topic] += 1
                log.warning(
                    "%s[%d]: offsets %d..%d did not arrive; read %d of them from the log",
                    tp.topic,
                    tp.partition,
                    missing.start,
                    missing.stop - 1,
                    len(records),
                )
            kept.extend(_refetched(tp, record) for record in records)
        kept.append(event)
    return kept


def _refetched(tp: TP, record: Record) -> faust.EventT:
    """A record read again, as the event Faust would have delivered: the
    stage's Committer acknowledges it like the others."""
    message = ConsumerMessage(
        tp.topic,
        tp.partition,
        record.offset,
        record.timestamp_ms / 1000,
        0,
        None,
        record.key,
        record.value,
        None,
        tp=tp,
        time_in=time.monotonic(),
    )
    message.incref()
    app.consumer.track_message(message)
    return Event(app, record.key, record.value, {}, message)


def _own_batch(topic: str, batch: Any) -> None:
    """`_own` for the partitions of a batch, before any of its messages."""
    for partition in {event.message.partition for event in batch}:
        _own(topic, partition)


def _adopt_board(partition: int) -> None:
    board_stage.adopt(partition)
    sla_tracker.adopt(partition)


def _release_board(partition: int) -> None:
    board_stage.release(partition)
    sla_tracker.release(partition)
    # The keys of these channels are the new owner's to publish, tombstone and delete.
    channels = {c for c in (*CHANNELS, UNKNOWN) if partition_for(c, N) == partition}
    redis_sink.disown(channels)
    for key in [k for k in published_keys if k.split(b"|", 1)[0].decode() in channels]:
        published_keys.discard(key)


STAGE_PARTITIONS: dict[str, tuple[Callable[[int], None], Callable[[int], None]]] = {
    by_interaction.get_topic_name(): (interaction_stage.adopt, interaction_stage.release),
    by_customer.get_topic_name(): (customer_stage.adopt, customer_stage.release),
    kpi_deltas.get_topic_name(): (_adopt_board, _release_board),
}
"""How each partitioned stage adopts and releases a partition, by its input topic."""


message_sizes = MessageSizes()
"""Items per message sent to each internal topic, for the backlog's estimate
(streams.pipeline.backpressure)."""


async def _send_internal(topic: faust.TopicT, partition: int, value: bytes, items: int) -> None:
    """A message carrying `items` events, facts or deltas to a stage."""
    message_sizes.sent(topic.get_topic_name(), items)
    await topic.send(value=value, partition=partition)


async def _send_interactions(out: Outbox) -> None:
    """Ingest's events to the interaction partitions, in messages of at most
    BATCH_ITEMS, with no clock: each interaction partition makes its own from
    every ingest's progress (report_live)."""
    sent = 0
    for partition, items in out.interactions.items():
        for start in range(0, len(items), BATCH_ITEMS):
            part = items[start : start + BATCH_ITEMS]
            await _send_internal(by_interaction, partition, orjson.dumps({"e": part}), len(part))
        sent += len(items)
    was_holding = input_hold.holding
    if input_hold.add(sent) and not was_holding:
        await _follow_hold(was_holding)
    await _send_deadletters(out.deadletters)


async def _send_outgoing(outgoing: Outgoing) -> None:
    """A stage's output for a batch: facts, then deltas."""
    for partition, body in outgoing.customer_messages():
        await _send_internal(by_customer, partition, orjson.dumps(body), len(body["f"]))
    for partition, body in outgoing.delta_messages():
        items = sum(len(run[3]) for run in body["d"])
        await _send_internal(kpi_deltas, partition, orjson.dumps(body), items)
    await _send_deadletters(outgoing.deadletters)


async def _send_deadletters(deadletters: list[DeadLetter]) -> None:
    for dead in deadletters:
        headers = [
            ("reason", dead.reason.encode()),
            ("detail", dead.detail.encode()),
            ("source_topic", dead.topic.encode()),
            ("source_partition", str(dead.partition).encode()),
            ("source_offset", str(dead.offset).encode()),
        ]
        if dead.index is not None:
            headers.append(("batch_index", str(dead.index).encode()))
        await deadletter_out.send(value=dead.raw, headers=headers)


async def _no_state() -> None:
    """Ingest keeps no table: its commit is its outputs'."""


def _state(write: Callable[[], None], changelog: BatchedChangelog) -> Callable[[], Awaitable[None]]:
    """A stage's state write for its Committer: the stage hands its changed keys
    to the changelog, which returns once Kafka has them."""

    async def written() -> None:
        write()
        await changelog.send()

    return written


async def _flush_producer() -> None:
    await app.producer.flush()


COMMIT_INTERVAL_S = 0.5
"""How often each stage makes its work durable (see streams.pipeline.committer);
below Faust's offset commit interval (1 s), so that every offset commit finds
the last half second acknowledged."""
ingest_commits = Committer(_flush_producer, _no_state, COMMIT_INTERVAL_S)
interaction_commits = Committer(
    _flush_producer, _state(interaction_store.commit, interaction_changelog), COMMIT_INTERVAL_S
)
COMMIT_RECORD_BYTES = MAX_RECORD_BYTES // 4
"""A stage commits early once a partition's pending writes reach this."""
customer_commits = Committer(
    _flush_producer,
    _state(lambda: customer_store.commit(customer_stage.marks()), customer_changelog),
    COMMIT_INTERVAL_S,
    full=lambda: customer_store.largest_commit() >= COMMIT_RECORD_BYTES,
)
board_commits = Committer(
    _flush_producer,
    _state(board_stage.flush, board_changelog),
    COMMIT_INTERVAL_S,
    full=lambda: board_store.largest_commit() >= COMMIT_RECORD_BYTES,
)
COMMITTERS = (ingest_commits, interaction_commits, customer_commits, board_commits)

# Every agent below takes batches without acknowledging them and leaves them to
# its stage's Committer: a batch's offsets are committed only after what it sent
# and then the state it changed are in Kafka. After a crash, a message whose
# effects were not all durable is processed again, and sends the same deltas
# at the same positions (sender, offset, index), which the board drops. See
# README "Guarantees".

EXIT_STAGE_FAILED = os.EX_SOFTWARE
StageAgent = Callable[[faust.StreamT], Awaitable[None]]


def _exits_on_failure(agent: StageAgent) -> StageAgent:
    """A stage that fails outside the KPI code ends the worker's process at
    once, with its error, for its supervisor (systemd, Kubernetes, compose's
    restart policy) to start it again; the restart reads again from the
    committed offsets, as after a `kill -9`: nothing is lost. Not by Faust's
    means: its default restarts the agent in place without the batch it held,
    and its crash stop hangs for good when offsets wait to be committed
    (mode stops the consumer's thread, then Faust commits through it)."""

    @functools.wraps(agent)
    async def run(stream: faust.StreamT) -> None:
        try:
            await agent(stream)
        except Exception:
            log.critical(
                "stage %s failed; the worker exits (status %d) for its supervisor to restart it",
                agent.__name__,
                EXIT_STAGE_FAILED,
                exc_info=True,
            )
            logging.shutdown()
            os._exit(EXIT_STAGE_FAILED)

    return run


@app.agent(input_topic)
@_exits_on_failure
async def ingest(stream: faust.StreamT) -> None:
    ingest_stream[:] = [stream]
    async for taken in stream.noack_take(1000, within=0.05):
        _sync()
        await _while_held(stream)
        batch = await _in_order(taken)
        async with ingest_commits.working():
            await _ingest_locked(stream, batch)
        await _tighten_alignment()


async def _ingest_locked(stream: faust.StreamT, batch: list[Any]) -> None:
    """Ingest's work on a batch, with `ingest_commits` held."""
    wall = now_ms()
    ingest_stage.behind(_unprocessed(), wall)
    out = Outbox()
    ingest_stage.process(
        ((e.message.topic, e.message.partition, e.message.offset, e.value) for e in batch),
        wall,
        out,
    )
    await _send_interactions(out)
    await ingest_commits.processed(stream, batch)


@app.timer(interval=2.0)
async def read_stalled_inputs() -> None:
    """Input partitions whose messages ingest has not processed and whose
    position stays put: their messages are read from the log
    (streams.pipeline.continuity, `Stalls`). Judged by what ingest processed,
    the view that holds the clocks (`_unprocessed`): judged by what Faust
    delivered, a message its monitor counted but ingest never got (a take
    buffer emptied at a rebalance) left a partition holding the clocks for
    good, with nothing ever read again."""
    if not _ready() or not ingest_stream:
        return
    _sync()
    await _refresh_input_ends()
    ends = _input_end_offsets()
    # Held input partitions are not taken from by design: not a stall, and
    # their wait starts afresh once they are released. Aligned ones neither,
    # until the consumer has handed on everything up to their end (`waiting`).
    lagging = []
    if not input_hold.holding:
        unprocessed = [TP(*source) for source in _unprocessed()]
        aligned = [tp for tp in unprocessed if tp in paused_inputs]
        # A TP equals its (topic, partition) tuple: it looks up `ends` as is.
        lagging = waiting(unprocessed, paused_inputs, await _handed_on(aligned), ends)
    behind = {tp: ingest_stage.taken.get(tp) for tp in lagging}
    for tp in stalls.stalled(behind, time.monotonic()):
        end = ends.get((tp.topic, tp.partition))
        if end is not None:
            await _read_stalled(tp, end)


POSITION_WAIT_S = 1.0
"""How long to wait for aiokafka's position in a partition that is being reset."""


async def _handed_on(tps: list[TP]) -> dict[TP, int]:
    """aiokafka's position in each of `tps`: the offset after the last record
    it handed on to Faust (records it fetched for a paused partition and has
    not handed on, it drops, and fetches again once the partition resumes).
    One without a position yet is left out: not known to be handed on."""
    if not tps:
        return {}

    async def positions(consumer: Any, assigned: list[TopicPartition]) -> dict[TP, int]:
        found = {}
        for kafka_tp in assigned:
            with contextlib.suppress(asyncio.TimeoutError, KafkaError):
                position = await asyncio.wait_for(consumer.position(kafka_tp), POSITION_WAIT_S)
                found[TP(*kafka_tp)] = position
        return found

    result: dict[TP, int] = await _in_consumer_thread(tps, positions)
    return result


async def _in_consumer_thread(
    tps: Iterable[TP], work: Callable[[Any, list[TopicPartition]], Awaitable[Any]]
) -> Any:
    """`work(consumer, assigned)` in Faust's consumer thread, which owns
    aiokafka's consumer: `assigned` are those of `tps` assigned to it now."""
    thread = app.consumer._thread  # type: ignore[attr-defined]
    wanted = [TopicPartition(tp.topic, tp.partition) for tp in tps]

    async def run() -> Any:
        consumer = thread._ensure_consumer()
        assigned = consumer.assignment()
        return await work(consumer, [tp for tp in wanted if tp in assigned])

    return await thread.call_thread(run)


async def _refresh_input_ends() -> None:
    """The input partitions' ends, asked of the broker again: Faust learns an
    end only with the records it delivers, and a partition whose records it
    has not delivered for the idle timeout would look idle, not behind, and
    let the clocks pass its events."""
    if input_sources:
        await _learn_ends(set(input_sources))


async def _read_stalled(tp: TP, end: int) -> None:
    """Up to STALL_READ_MAX of the messages of `tp` before `end`, from the one
    after the last that ingest processed (or the group's committed offset),
    read from the log and ingested as if Faust had delivered them; unless
    ingest took or processed a message of `tp` meanwhile. Those it had taken
    before may come twice: the interaction stage drops them by `event_id`."""
    source = (tp.topic, tp.partition)
    processed = ingest_stage.taken.get(source)
    expected = continuity.next_offset(tp)
    if processed is not None:
        start = processed + 1
    else:
        start = (await refetcher.starts(app.conf.id, {source}))[source]
    stop = min(end, start + STALL_READ_MAX)
    records = await refetcher.read(tp.topic, tp.partition, start, stop) if stop > start else []
    async with ingest_commits.working():
        if ingest_stage.taken.get(source) != processed or continuity.next_offset(tp) != expected:
            return  # ingest took or processed a message of it meanwhile
        if source not in input_sources or not _ready():
            return
        if stop <= start:
            # Committed by the group already: Faust's record of it was behind.
            ingest_stage.passed(source, start)
            return
        if expected is None:
            continuity.start(tp, start)
        continuity.passed(tp, stop)
        if not records:
            continuity.has_gaps(tp)
        stats.input_gaps[tp.topic] += 1
        log.warning(
            "%s[%d]: offsets %d..%d unprocessed, and none processed for %.0f s; "
            "read %d of them from the log",
            tp.topic,
            tp.partition,
            start,
            stop - 1,
            STALL_S,
            len(records),
        )
        if records:
            await _ingest_locked(ingest_stream[0], [_refetched(tp, r) for r in records])
        ingest_stage.passed(source, stop)


input_hold = InputHold(settings.max_internal_backlog)
backlog_reader = Refetcher(kafka_args(settings))
"""Clients of their own for the backlog asked every second."""
INTERNAL_TPS = {
    (topic.get_topic_name(), p)
    for topic in (by_interaction, by_customer, kpi_deltas)
    for p in range(N)
}
HELD_POLL_S = 0.05


async def _while_held(stream: faust.StreamT) -> None:
    """Ingest takes nothing while the hold is on: what was fetched before
    `_apply_pauses` stopped fetching waits in ingest's stream buffer. Should that
    buffer fill up, ingest goes on, rather than block Faust's consumer, which
    every stage reads through. Not through a rebalance either: the rebalance
    waits for the batch ingest holds."""
    queue = stream.channel.queue  # type: ignore[attr-defined]
    while input_hold.holding and _ready() and not queue.full():
        await asyncio.sleep(HELD_POLL_S)


paused_inputs: set[TP] = set()
"""The input partitions `_apply_pauses` paused."""
pausing = asyncio.Lock()
alignment = InputAlignment(settings.max_input_skew_ms)
"""Which input partitions run too far ahead in event time (event clock only:
on the wall clock nothing waits for the slowest partition)."""


async def _apply_pauses() -> None:
    """The Kafka consumer fetches nothing more for this worker's input
    partitions while the hold is on, nor for those input alignment pauses."""
    async with pausing:
        current = {TP(*source) for source in input_sources}
        if input_hold.holding:
            wanted = current
        else:
            wanted = {TP(*source) for source in alignment.paused} & current
        if wanted:
            # Again at every check: a rebalance makes new, unpaused partition states.
            await _fetching(wanted, paused=True)
        resumed = (paused_inputs - wanted) & current
        if resumed:
            await _fetching(resumed, paused=False)
        paused_inputs.clear()
        paused_inputs.update(wanted)


def _align() -> None:
    """Input alignment (streams.pipeline.alignment): which of this worker's
    input partitions run too far ahead of the slowest with unread messages."""
    if settings.clock != "event":
        return
    _count_pauses(alignment.update(*_input_times()))


def _input_times() -> tuple[dict[tuple[str, int], int | None], list[tuple[str, int]]]:
    """Each input partition's latest event time, and those with unread messages."""
    latest = {source: ingest_stage.watermark.latest(source) for source in input_sources}
    return latest, _unprocessed()


def _count_pauses(started: set[tuple[str, int]]) -> None:
    for topic, partition in sorted(started):
        stats.ahead_pauses[topic] += 1
        log.info(
            "%s[%d] paused: more than %s of event time ahead of the slowest input partition",
            topic,
            partition,
            format_duration(alignment.max_skew_ms),
        )


async def _tighten_alignment() -> None:
    """After each ingest batch, between the checks: a partition that ran ahead
    while others are paused is paused at once (`InputAlignment.tighten`)."""
    if settings.clock != "event" or not alignment.paused or not _ready():
        return
    before = set(alignment.paused)
    _count_pauses(alignment.tighten(*_input_times()))
    if alignment.paused != before:
        await _apply_pauses()


async def _fetching(tps: set[TP], *, paused: bool) -> None:
    """Pause or resume `tps` in aiokafka's consumer, in Faust's consumer thread,
    which owns it. Not Faust's own `pause_partitions`: it drops the records
    already fetched for them, and a partition whose end they were then
    delivers nothing more (faust-streaming 0.15, pinned in pyproject.toml).
    aiokafka's keeps its position, and fetches them again once resumed."""

    async def switch(consumer: Any, held: list[TopicPartition]) -> None:
        if held:
            (consumer.pause if paused else consumer.resume)(*held)

    await _in_consumer_thread(tps, switch)


async def _follow_hold(was_holding: bool) -> None:
    """Say when the hold starts or ends, and pause or resume the input."""
    if input_hold.holding and not was_holding:
        log.info(
            "internal backlog ~%d items (limit %d): input held",
            input_hold.waiting,
            input_hold.limit,
        )
    elif was_holding and not input_hold.holding:
        log.info("internal backlog ~%d items: input released", input_hold.waiting)
    await _apply_pauses()


@app.timer(interval=1.0)
async def hold_back_input() -> None:
    """Backpressure (streams.pipeline.backpressure): while more internal items
    than `pipeline.max_internal_backlog` wait to be processed, by any worker of
    the group, ingest waits (`_while_held`). The backlog runs from each
    internal partition's position (its committed offset, or the next offset
    its stage takes here) to its log's end."""
    if not _ready():
        return
    _sync()
    ends = await backlog_reader.ends(INTERNAL_TPS)
    starts = await backlog_reader.starts(app.conf.id, INTERNAL_TPS)
    positions = {
        tp: max(start, continuity.next_offset(TP(*tp)) or 0) for tp, start in starts.items()
    }
    was_holding = input_hold.holding
    input_hold.update(*backlog(ends, positions, message_sizes))
    _align()
    await _follow_hold(was_holding)


@app.agent(by_interaction)
@_exits_on_failure
async def interactions(stream: faust.StreamT) -> None:
    topic = by_interaction.get_topic_name()
    async for taken in stream.noack_take(STAGE_BATCH, within=0.05):
        _sync()
        batch = await _in_order(taken)
        wall = now_ms()
        async with interaction_commits.working():
            _own_batch(topic, batch)
            outgoing = Outgoing(BATCH_ITEMS)
            for event in batch:
                out = Outbox()
                message = event.message
                interaction_stage.process(
                    message.partition, orjson.loads(event.value), out, wall, message.offset
                )
                outgoing.add(f"i{message.partition}", message.offset, out)
            await _send_outgoing(outgoing)
            await interaction_commits.processed(stream, batch)


@app.agent(by_customer)
@_exits_on_failure
async def customers(stream: faust.StreamT) -> None:
    topic = by_customer.get_topic_name()
    async for taken in stream.noack_take(STAGE_BATCH, within=0.05):
        _sync()
        batch = await _in_order(taken)
        wall = now_ms()
        async with customer_commits.working():
            _own_batch(topic, batch)
            outgoing = Outgoing(BATCH_ITEMS)
            for event in batch:
                out = Outbox()
                message = event.message
                customer_stage.process(
                    message.partition, orjson.loads(event.value), out, wall, message.offset
                )
                outgoing.add(f"c{message.partition}", message.offset, out)
            await _send_outgoing(outgoing)
            await customer_commits.processed(stream, batch)


@app.agent(kpi_deltas)
@_exits_on_failure
async def board(stream: faust.StreamT) -> None:
    topic = kpi_deltas.get_topic_name()
    async for taken in stream.noack_take(STAGE_BATCH, within=0.05):
        _sync()
        batch = await _in_order(taken)
        wall = now_ms()
        async with board_commits.working():
            _own_batch(topic, batch)
            for event in batch:
                board_stage.process(orjson.loads(event.value), wall, event.message.partition)
            # The board's changes go to its store now (Kafka gets them at the
            # commit): a partition adopted before then replaces the keys those
            # changes point to.
            board_stage.flush()
            await board_commits.processed(stream, batch)


@app.timer(interval=COMMIT_INTERVAL_S)
async def commit() -> None:
    """Commits what a quiet stream left pending."""
    await _commit_pending(due_only=True)


async def _commit_pending(*, due_only: bool) -> None:
    for committer in COMMITTERS:
        if committer.pending and (committer.due or not due_only):
            await committer.commit()


async def _commit_until(done: asyncio.Event) -> None:
    """Commits every stage's pending batches until `done` is set."""
    while not done.is_set():
        await _commit_pending(due_only=False)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), 0.05)


@app.timer(interval=1.0)
async def report_live() -> None:
    """Each interaction partition reports its waiting contacts to the channel
    owners. With the event clock, ingest reports its input partitions' progress
    to every interaction partition and to the board, and every other stage
    sends its clock downstream, in-band, to every partition of the next stage
    (see BoardStage.senders)."""
    if not _ready():
        return
    _sync()
    wall = now_ms()
    event_clock = settings.clock == "event"
    progress: list[list[Any]] = []
    if event_clock:
        # Under ingest's lock: no progress report passes events still unsent
        # (nor any, once a batch failed: committer.py).
        async with ingest_commits.lock:
            ingest_stage.behind(_unprocessed(), wall)
            progress = [] if ingest_commits.broken else ingest_stage.progress(wall)
            if progress:
                heartbeat = orjson.dumps({"e": [], "progress": progress})
                for target in range(N):
                    await _send_internal(by_interaction, target, heartbeat, 0)
    # What to send is read under the stages' locks, so that no clock passes a
    # delta still unsent; it is sent after, so that a slow send never holds up
    # the stages.
    outgoing: list[tuple[faust.TopicT, int, bytes, int]] = []
    async with interaction_commits.lock:
        for partition in _reporting(interaction_commits, by_interaction):
            gauges = interaction_stage.live(partition, wall)
            clock = interaction_stage.clock(partition, wall)
            rows: dict[int, list[list[Any]]] = {p: [] for p in CHANNEL_PARTITIONS}
            for (channel, queue, network), live in gauges.items():
                rows.setdefault(partition_for(channel, N), []).append(
                    [channel, queue, network, live.queue_now, live.oldest_start_ms, live.at_risk]
                )
            for target, items in rows.items():
                body = {"live": partition, "to": target, "g": items, "wm": clock}
                outgoing.append((kpi_deltas, target, orjson.dumps(body), len(items)))
            if event_clock and clock is not None:
                body = {"wm": {f"i{partition}": clock}, "f": []}
                outgoing += [(by_customer, target, orjson.dumps(body), 0) for target in range(N)]
    if event_clock:
        async with customer_commits.lock:
            for partition in _reporting(customer_commits, by_customer):
                clock = customer_stage.clock(partition, wall)
                if clock is not None:
                    body = {"clock": f"c{partition}", "wm": clock}
                    outgoing += [
                        (kpi_deltas, target, orjson.dumps(body), 0) for target in CHANNEL_PARTITIONS
                    ]
    for topic, target, value, items in outgoing:
        await _send_internal(topic, target, value, items)
    if progress:
        for target in CHANNEL_PARTITIONS:
            await _send_internal(kpi_deltas, target, orjson.dumps({"progress": progress}), 0)


def _reporting(committer: Committer, topic: faust.TopicT) -> list[int]:
    """The partitions of a stage that report their clocks: those it owns,
    none once a batch of it failed (streams.pipeline.committer)."""
    return [] if committer.broken else sorted(owned.get(topic.get_topic_name(), ()))


CLOCKS_LOG_INTERVAL_S = 30.0


@app.timer(interval=CLOCKS_LOG_INTERVAL_S)
async def log_clocks() -> None:
    """With the event clock, each stage partition's clock and what it waits
    for, in one log line: where to look when the wallboard stops moving."""
    if settings.clock != "event" or not _ready():
        return
    wall = now_ms()

    def at(clock: int | None) -> str:
        return "-" if clock is None else iso(clock)

    parts = [f"ingest holds {ingest_stage.watermark.holding(wall)}"]
    for partition in sorted(owned.get(by_interaction.get_topic_name(), ())):
        watermark = interaction_stage.watermarks.get(partition)
        waits = [] if watermark is None else watermark.holding(wall)
        clock = interaction_stage.clock(partition, wall)
        parts.append(f"i{partition} {at(clock)} waits for {waits}")
    for partition in sorted(owned.get(by_customer.get_topic_name(), ())):
        upstream = customer_stage.upstream.get(partition)
        waits_for = [] if upstream is None else upstream.holding()
        clock = customer_stage.clock(partition, wall)
        parts.append(f"c{partition} {at(clock)} waits for {waits_for}")
    clocks = board_stage.clocks(wall)
    for partition in sorted(board_stage.held()):
        upstream = board_stage.upstream.get(partition)
        waits_for = [] if upstream is None else upstream.holding()
        parts.append(f"board{partition} {at(clocks.get(partition))} waits for {waits_for}")
    parts.append(f"board inputs hold {board_stage.watermark.holding(wall)}")
    log.info("clocks: %s", "; ".join(parts))


def _input_lag() -> dict[tuple[str, int], int]:
    """Messages between the last one read and the end of each input partition
    (the monitor keeps partitions this worker no longer holds: filter them)."""
    monitor = app.monitor
    inputs = topics.inputs()
    lag = {}
    for tp, end in monitor.tp_end_offsets.items():
        if tp.topic in inputs and (tp.topic, tp.partition) in input_sources:
            read = monitor.tp_read_offsets.get(tp)
            lag[(tp.topic, tp.partition)] = max(0, end - (read + 1 if read is not None else 0))
    return lag


def _input_end_offsets() -> dict[tuple[str, int], int]:
    """Where each input partition's log ends, as last heard: from the broker at
    the assignment, or from Faust with the records it delivered."""
    ends = dict(input_ends)
    for tp, end in app.monitor.tp_end_offsets.items():
        source = (tp.topic, tp.partition)
        ends[source] = max(end, ends.get(source, end))
    return ends


def _unprocessed() -> list[tuple[str, int]]:
    """Input partitions with messages ingest has not processed yet: they hold
    the watermark (see `unread`). A batch Faust delivered is not processed
    until ingest has it under its lock: counted as read before, a partition
    whose last messages waited there (for a commit, a read from the log)
    looked idle, and the clocks passed its events."""
    return unread(
        sorted(input_sources),
        _input_end_offsets(),
        ingest_stage.taken,
        {source: _committed(TP(*source)) for source in input_sources},
    )


def _exposition() -> Exposition:
    wall = now_ms()
    if _ready():
        _sync()
        board_stage.tick(wall)
    return Exposition(
        records=board_stage.board.records(board_stage.labels),
        settled=list(board_stage.board.settled()),
        sla=list(sla_tracker.breached()),
        stats=stats,
        min_contacts=settings.min_contacts,
        clock_ms=board_stage.board.clock_ms,
        snapshot_ms=last_snapshot_ms,
        redis_up=redis_sink.up,
        redis_errors=redis_sink.errors,
        lag=_input_lag(),
        caps=board_stage.cap,
        board_partitions=len(board_stage.held()),
        internal_backlog=input_hold.messages,
        internal_backlog_items=input_hold.waiting,
        input_held=input_hold.holding,
        input_skew_ms=alignment.skew_ms,
        inputs_ahead=len(alignment.paused),
        heap=heap_stats.read(),
    )


heap_stats = JemallocStats()
metrics_registry = registry(_exposition)


@app.page("/metrics")
class Metrics(View):
    async def get(self, request: Request) -> Response:
        body = generate_latest(metrics_registry)
        return self.bytes(body, content_type=CONTENT_TYPE_LATEST.split(";")[0])


async def publish_snapshot() -> bool:
    """Records to Redis and cc.kpis; SLA transitions to cc.sla. False if there
    was nothing to publish yet (no clock) or the board is broken."""
    global last_snapshot_ms
    wall = now_ms()
    async with board_commits.lock:
        if board_commits.broken:
            return False
        clock = board_stage.tick(wall)
        await board_commits.commit_locked()
    if clock is None:
        return False
    records = board_stage.board.records(board_stage.labels)
    for event in sla_tracker.evaluate(records, iso(clock)):
        await sla_out.send(key=key_of_record(event).encode(), value=orjson.dumps(event))
    # A transition is remembered only once it is out: after a crash it may be
    # announced again, never lost.
    await app.producer.flush()
    sla_store.commit()
    keys = set()
    for record in records:
        key = key_of_record(record).encode()
        keys.add(key)
        await kpis_out.send(key=key, value=orjson.dumps(record))
    for gone in published_keys - keys:
        # A key that is no longer produced gets a tombstone.
        await kpis_out.send(key=gone, value=None)
    published_keys.clear()
    published_keys.update(keys)
    await redis_sink.write(records, list(sla_tracker.latest.items()))
    last_snapshot_ms = wall
    return True


@app.timer(interval=settings.snapshot_interval_ms / 1000)
async def snapshot() -> None:
    published = False
    if _ready():
        _sync()
        published = await publish_snapshot()
    if not published:
        # No write to tell Redis's health by: ask it.
        await redis_sink.check()


@app.timer(interval=60.0)
async def expire() -> None:
    if not _ready():
        return
    _sync()
    wall = now_ms()
    async with interaction_commits.lock:
        interaction_stage.expire(owned.get(by_interaction.get_topic_name(), ()), wall)
        await interaction_commits.commit_locked()
    async with customer_commits.lock:
        customer_stage.expire(owned.get(by_customer.get_topic_name(), ()), wall)
        await customer_commits.commit_locked()


compactions = {
    interaction_table: Compaction(PER_STEP),
    customer_table: Compaction(PER_STEP),
}


@app.timer(interval=1.0)
async def compact_state() -> None:
    """The state's values copied into the fullest slabs of the heap, so that
    those a backlog left holding a value or two go back to the OS
    (streams.pipeline.compaction)."""
    if not _ready():
        return
    with heap_stats.thread_cache_off():
        for table, compaction in compactions.items():
            compaction.step(table.data)


@app.timer(interval=10.0)
async def release_memory() -> None:
    """What a backlog held and freed goes back to the OS (streams.pipeline.memory)."""
    release_free_memory()


@app.on_before_shutdown.connect
async def final_snapshot(app: faust.App, **kwargs: Any) -> None:
    """A clean stop publishes one last snapshot."""
    try:
        await publish_snapshot()
    finally:
        refetcher.close()
        end_reader.close()
        backlog_reader.close()
        await redis_sink.close()
