"""`cc-kpi simulate`: run a scenario and send its events to Kafka or a JSONL file.

Also the output options (`--out`, `--speed`, `--batch`, ...) and their
plumbing, which `cc-kpi replay` shares, so both commands send the same way.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Final

from streams.config import Settings, load_settings
from streams.simulator import scenario as scenarios
from streams.simulator.delivery import Delivered, Pacer, deliver, parse_speed
from streams.simulator.faults import Faults, inject
from streams.simulator.model import Simulation
from streams.simulator.progress import Progress
from streams.simulator.sink import JsonlSink, KafkaSink, Sink, SinkError
from streams.simulator.wire import Message, batched, encode

BATCH_WAIT_S: Final = 1.0
"""Wall time a Kafka batch may wait for more events of its topic when paced ..."""
BATCH_LINGER_MS: Final = 60_000
"""... and event time at most, whatever the speed: far within the pipeline's allowed
lateness (10 min by default), so batching never makes an event late."""


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "simulate",
        help="simulate a contact center and send its events",
        description="Run a scenario of the contact-center model and send its events to the "
        "input topics or to a JSONL file. Same seed, same events.",
    )
    parser.add_argument(
        "scenario",
        help="a shipped scenario (" + ", ".join(scenarios.available()) + ") or a TOML file",
    )
    parser.add_argument("--seed", type=int, default=1, help="random seed (default 1)")
    parser.add_argument(
        "--start",
        help="start of the simulated time: RFC 3339 (2026-11-23T00:00:00Z) or 'now' "
        "(needed with a wall-clock pipeline); default: the scenario's",
    )
    parser.add_argument("--duration", help="simulated time, e.g. 6h or 3d; default: the scenario's")
    add_output_options(parser)
    faults = parser.add_argument_group("faults (for tests)")
    faults.add_argument("--duplicates", type=_share, default=0.0, help="share sent twice")
    faults.add_argument("--disorder", type=_share, default=0.0, help="share delivered out of order")
    faults.add_argument("--disorder-max", default="2m", help="how far out of order (default 2m)")
    faults.add_argument("--late", type=_share, default=0.0, help="share delivered after --late-by")
    faults.add_argument("--late-by", default="15m", help="lateness of late events (default 15m)")
    faults.add_argument(
        "--malformed", type=_share, default=0.0, help="extra malformed messages, per event"
    )
    parser.set_defaults(func=run)


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
        type=int,
        default=1,
        help="Kafka: events per message; above 1, JSON array batches without key (default 1)",
    )
    group.add_argument("--no-progress", action="store_true", help="never draw the progress bar")


def _speed(text: str) -> float | None:
    try:
        return parse_speed(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
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
            settings.topics,
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
    print(f"cc-kpi {command}: {problem}", file=sys.stderr)
    return code


def run(args: argparse.Namespace) -> int:
    settings = load_settings(getattr(args, "config", None))
    try:
        scenario = scenarios.load(args.scenario)
        start = _start(args.start)
        duration = scenarios.parse_duration(args.duration, "--duration") if args.duration else None
        faults = Faults(
            duplicates=args.duplicates,
            disorder=args.disorder,
            disorder_ms=scenarios.parse_duration(args.disorder_max, "--disorder-max"),
            late=args.late,
            late_ms=scenarios.parse_duration(args.late_by, "--late-by"),
            malformed=args.malformed,
        )
    except scenarios.ScenarioError as error:
        return fail("simulate", error, 2)
    simulation = Simulation(scenario, args.seed, start, duration)
    messages: Iterable[Message] = map(encode, simulation.events())
    if faults.active:
        messages = inject(messages, faults, args.seed)
    span = simulation.end - simulation.start
    began = time.monotonic()
    try:
        done = send(
            messages,
            args,
            settings,
            scenario.name,
            lambda message, _events: (message.at - simulation.start) / span,
        )
    except UsageError as error:
        return fail("simulate", error, 2)
    except (SinkError, OSError) as error:  # OSError: the JSONL file
        return fail("simulate", error, 1)
    except KeyboardInterrupt:
        return fail("simulate", "interrupted", 130)
    elapsed = time.monotonic() - began
    print(
        f"{scenario.name} (seed {args.seed}): {done.events:,} events in {done.messages:,} "
        f"messages to {sent_to(args, settings)}, {elapsed:.1f} s, "
        f"{done.events / max(elapsed, 1e-9):,.0f} events/s",
        file=sys.stderr,
    )
    return 0


def _start(text: str | None) -> int | None:
    if text is None:
        return None
    if text == "now":
        return int(time.time()) * 1000
    return scenarios.parse_start(text, "--start")
