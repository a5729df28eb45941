"""The output side shared by `simulate` and `replay`: the options (`--out`, `--speed`,
`--batch`, ...), the sink they name, Kafka batching, pacing and the progress bar,
so that both commands send the same way."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Final

from streams.config import Settings
from streams.simulator.delivery import Delivered, Pacer, deliver, parse_speed
from streams.simulator.progress import Progress
from streams.simulator.sink import JsonlSink, KafkaSink, Sink
from streams.simulator.wire import Message, batched

BATCH_WAIT_S: Final = 1.0
"""Wall time a Kafka batch may wait for more events of its topic when paced ..."""
BATCH_LINGER_MS: Final = 60_000
"""... and event time at most, whatever the speed: far within the pipeline's allowed
lateness (10 min by default), so batching never makes an event late."""


def add_output_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("output")
    group.add_argument(
        "--out",
        default="kafka",
        help="'kafka' (the input topics, default) or a JSONL file ('-' for stdout)",
    )
    group.add_argument(
        "--speed",
        type=_speed,
        default=None,
        help="'max' (default), 'realtime', or a factor: 60 sends an hour of events per minute",
    )
    group.add_argument("--bootstrap", help="Kafka bootstrap servers (default: $CC_KAFKA_BOOTSTRAP)")
    group.add_argument(
        "--batch",
        type=_positive,
        default=1,
        help="Kafka: events per message; above 1, JSON array batches without key (default 1)",
    )
    group.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def _speed(text: str) -> float | None:
    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return value


class UsageError(ValueError):
    """A combination of options that cannot work; exit code 2."""


@contextmanager
def open_sink(args: argparse.Namespace, settings: Settings) -> Iterator[Sink]:
    """The sink `--out` names; closed (flushed) on the way out, whatever happens."""
    if args.out != "kafka" and args.batch != 1:
        raise UsageError("--batch applies to Kafka output only")
    if args.batch > settings.max_batch_events:
        raise UsageError(
            f"--batch {args.batch}: the pipeline accepts at most "
            f"{settings.max_batch_events} events per batch (pipeline.max_batch_events)"
        )
    sink: Sink
    if args.out == "kafka":
        sink = KafkaSink(
            args.bootstrap or settings.kafka_bootstrap,
            settings,
            max_request_bytes=settings.max_message_bytes + 64 * 1024,
        )
    elif args.out == "-":
        sink = JsonlSink(sys.stdout.buffer, owned=False)
    else:
        sink = JsonlSink(open(args.out, "wb", buffering=1024 * 1024), owned=True)  # noqa: SIM115
    try:
        yield sink
    finally:
        sink.close()


def shaped(
    messages: Iterable[Message], args: argparse.Namespace, settings: Settings
) -> Iterable[Message]:
    """Kafka batches when asked for."""
    if args.out == "kafka" and args.batch > 1:
        linger_ms = BATCH_LINGER_MS
        if args.speed is not None:
            linger_ms = min(linger_ms, round(BATCH_WAIT_S * 1000 * args.speed))
        return batched(messages, args.batch, settings.max_message_bytes, linger_ms)
    return messages


def send(
    messages: Iterable[Message],
    args: argparse.Namespace,
    settings: Settings,
    label: str,
    fraction: Callable[[Message, int], float],
) -> Delivered:
    progress = Progress(label, enabled=False if args.no_progress else None)
    try:
        with open_sink(args, settings) as sink:
            return deliver(
                shaped(messages, args, settings), sink, Pacer(args.speed), progress, fraction
            )
    finally:
        progress.close()


def sent_to(args: argparse.Namespace, settings: Settings) -> str:
    if args.out == "kafka":
        return f"Kafka at {args.bootstrap or settings.kafka_bootstrap}"
    return "stdout" if args.out == "-" else args.out


def fail(command: str, problem: object, code: int) -> int:
    """One line on stderr, no traceback; returns the exit code."""
    print(f"cc-kpi {command}: {problem}", file=sys.stderr)
    return code
