"""`cc-kpi replay`: send a JSONL file of events, or a CSV export through a mapping, in
event-time order, at the chosen speed, to Kafka or a JSONL file."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Final

from streams.config import Settings, load_settings
from streams.contract.decode import Limits
from streams.contract.event import CHANNELS
from streams.replay import mapping as mappings
from streams.replay.importer import BadRow, import_csv
from streams.replay.jsonl import read_jsonl
from streams.replay.order import in_event_time_order
from streams.simulator.output import UsageError, add_output_options, fail, send, sent_to
from streams.simulator.sink import SinkError
from streams.simulator.wire import Message, encode

SHOWN_BAD_ROWS: Final = 20


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay",
        help="replay recorded events or a CSV export, in event-time order",
        description="Send a JSONL file of contract events (one per line), or a CSV export "
        "read through a mapping file, to the input topics in event-time order. Bad rows are "
        "reported with their line number and skipped.",
    )
    parser.add_argument("input", help="JSONL file of events, or a CSV file with --mapping")
    parser.add_argument(
        "--mapping",
        help="read INPUT as CSV through this mapping: a shipped one ("
        + ", ".join(mappings.available())
        + ") or a TOML file",
    )
    parser.add_argument(
        "--channel", choices=CHANNELS, help="JSONL: the channel of events that name none"
    )
    parser.add_argument("--bad-rows", help="write every bad row (line, tab, reason) to this file")
    add_output_options(parser)
    parser.set_defaults(func=run)


def _limits(settings: Settings) -> Limits:
    return Limits(settings.max_event_bytes, settings.max_message_bytes, settings.max_batch_events)


def _load(args: argparse.Namespace, limits: Limits) -> tuple[list[Message], list[BadRow], int]:
    """(messages in input order, bad rows, rows read)."""
    if args.mapping:
        mapping = mappings.load(args.mapping)
        with open(args.input, encoding=mapping.encoding, newline="") as stream:
            imported = import_csv(stream, mapping, limits)
        return [encode(event) for event in imported.events], imported.bad, imported.rows
    with open(args.input, "rb") as stream:
        loaded = read_jsonl(stream, limits, args.channel)
    return loaded.messages, loaded.bad, len(loaded.messages) + len(loaded.bad)


def _report(bad: list[BadRow], args: argparse.Namespace) -> None:
    for row in bad[:SHOWN_BAD_ROWS]:
        print(f"{args.input}:{row.line}: {row.reason}", file=sys.stderr)
    if len(bad) > SHOWN_BAD_ROWS:
        more = f"... and {len(bad) - SHOWN_BAD_ROWS} more bad rows"
        hint = f" (all in {args.bad_rows})" if args.bad_rows else " (--bad-rows FILE lists all)"
        print(more + hint, file=sys.stderr)
    if args.bad_rows:
        Path(args.bad_rows).write_text(
            "".join(f"{row.line}\t{row.reason}\n" for row in bad), encoding="utf-8"
        )


def run(args: argparse.Namespace) -> int:
    settings = load_settings(getattr(args, "config", None))
    try:
        messages, bad, rows = _load(args, _limits(settings))
    except mappings.MappingError as error:
        return fail("replay", error, 2)
    except (OSError, UnicodeDecodeError) as error:
        return fail("replay", f"cannot read {args.input}: {error}", 1)
    _report(bad, args)
    ordered = in_event_time_order(messages)
    total = max(1, sum(message.events for message in ordered.messages))
    began = time.monotonic()
    try:
        done = send(
            ordered.messages, args, settings, "replay", lambda _message, events: events / total
        )
    except UsageError as error:
        return fail("replay", error, 2)
    except (SinkError, OSError) as error:  # OSError: the JSONL file
        return fail("replay", error, 1)
    except KeyboardInterrupt:
        return fail("replay", "interrupted", 130)
    elapsed = time.monotonic() - began
    print(
        f"replay: {done.events:,} events from {rows:,} rows ({len(bad):,} bad, "
        f"{ordered.reordered:,} put back in event-time order) to {sent_to(args, settings)}, "
        f"{elapsed:.1f} s",
        file=sys.stderr,
    )
    return 0
