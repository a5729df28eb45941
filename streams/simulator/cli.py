"""`cc-kpi simulate`: run a scenario and send its events to Kafka or a JSONL file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable

from streams.config import load_settings
from streams.simulator import scenario as scenarios
from streams.simulator.faults import Faults, inject
from streams.simulator.model import Simulation
from streams.simulator.output import UsageError, add_output_options, fail, send, sent_to
from streams.simulator.sink import SinkError
from streams.simulator.wire import Message, encode


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


def _share(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"expected a share between 0 and 1, got {text!r}")
    return value


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
