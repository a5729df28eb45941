"""`cc-kpi top` (the live terminal view) and `cc-kpi kpi` (the snapshot, for people or scripts).

Both read what the pipeline keeps in Redis; `top` then follows the updates
channel, redraws at most twice a second, and rescans now and then to drop
records that expired.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Final

import redis
from redis.client import PubSub
from redis.exceptions import RedisError

from streams.config import load_settings, redact_url
from streams.connections import redis_client
from streams.contract.event import CHANNELS
from streams.live.render import render
from streams.live.snapshot import UPDATES_CHANNEL, Snapshot, as_json, parse_update, read
from streams.live.terminal import Screen

REDRAW_EVERY_S: Final = 0.5
DEFAULT_WINDOW: Final = "1h"


def add_subcommands(subparsers: argparse._SubParsersAction) -> None:
    top = subparsers.add_parser(
        "top",
        help="live view of the KPIs per channel and queue (from Redis)",
        description="A full-screen table of the current KPIs per channel, queue and network, "
        "refreshed from the Redis updates channel; values that miss their target or are in "
        "SLA breach are highlighted. Keys: q quits, w changes the window. Without a terminal "
        "it prints the table once.",
    )
    _redis_option(top)
    top.add_argument("--window", default=DEFAULT_WINDOW, help="window to show (default 1h)")
    top.add_argument("--no-color", action="store_true", help="no ANSI colours")
    top.add_argument(
        "--rescan",
        type=float,
        default=5.0,
        help="seconds between full reads of Redis, which drop expired records (default 5)",
    )
    top.set_defaults(func=run_top)

    kpi = subparsers.add_parser(
        "kpi",
        help="print the current KPI snapshot (--json for scripts)",
        description="Print the KPI records and SLA states in Redis now: as a table, or as "
        'JSON {"records": {key: record}, "sla": {"kpi:key": event}} with --json.',
    )
    _redis_option(kpi)
    kpi.add_argument("--json", action="store_true", help="print JSON")
    kpi.add_argument("--window", help="only this window (default: all; the table shows 1h)")
    kpi.add_argument("--channel", choices=CHANNELS, help="only this channel")
    kpi.set_defaults(func=run_kpi)


def _fail(command: str, problem: str) -> int:
    print(f"cc-kpi {command}: {problem}", file=sys.stderr)
    return 1


def _redis_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis", help="Redis URL (default: $CC_REDIS_URL or the config's)")


def _client(args: argparse.Namespace) -> tuple[redis.Redis, str]:
    """The client, with the configured credentials, and its URL as messages may show it."""
    settings = load_settings(getattr(args, "config", None))
    url = args.redis or settings.redis_url
    return redis_client(settings, url), redact_url(url)


def _only(snapshot: Snapshot, channel: str | None) -> Snapshot:
    if channel is None:
        return snapshot
    records = {k: r for k, r in snapshot.records.items() if r.get("channel") == channel}
    return Snapshot(records, snapshot.sla)


def run_kpi(args: argparse.Namespace) -> int:
    client, url = _client(args)
    try:
        snapshot = read(client)
    except RedisError as error:
        return _fail("kpi", f"cannot read Redis at {url}: {error}")
    finally:
        client.close()
    if args.json:
        windows = None if args.window is None else [args.window]
        sys.stdout.buffer.write(as_json(snapshot, windows, args.channel) + b"\n")
        sys.stdout.flush()
        return 0
    window = args.window or DEFAULT_WINDOW
    sys.stdout.write(render(_only(snapshot, args.channel), window, Screen.width(), False, False))
    return 0


def run_top(args: argparse.Namespace) -> int:
    client, url = _client(args)
    try:
        snapshot = read(client)
    except RedisError as error:
        client.close()
        return _fail("top", f"cannot read Redis at {url}: {error}")
    if not sys.stdout.isatty():
        client.close()
        sys.stdout.write(render(snapshot, args.window, Screen.width(), False, False))
        return 0
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    try:
        pubsub.subscribe(UPDATES_CHANNEL)
        with Screen(sys.stdout, sys.stdin) as screen:
            _follow(screen, client, pubsub, snapshot, args)
    except RedisError as error:
        return _fail("top", f"cannot subscribe to {UPDATES_CHANNEL} at {url}: {error}")
    except KeyboardInterrupt:
        pass
    finally:
        pubsub.close()
        client.close()
    return 0


def next_window(windows: list[str], current: str) -> str:
    """The window after `current` (the `w` key), round the ones present."""
    if current not in windows:
        return windows[0] if windows else current
    return windows[(windows.index(current) + 1) % len(windows)]


def _follow(
    screen: Screen,
    client: redis.Redis,
    pubsub: PubSub,
    snapshot: Snapshot,
    args: argparse.Namespace,
) -> None:
    """Redraw on updates until q: the interactive loop of `top`."""
    window = args.window
    status = ""
    dirty = True
    drawn_at = float("-inf")
    width = screen.width()
    rescan_at = time.monotonic() + args.rescan
    while True:
        if screen.width() != width:
            width, dirty = screen.width(), True
        if dirty and time.monotonic() - drawn_at >= REDRAW_EVERY_S:
            text = render(snapshot, window, width, not args.no_color, True)
            screen.draw(text + status)
            dirty, drawn_at = False, time.monotonic()
        try:
            message = pubsub.get_message(timeout=0.2)
            while message is not None:
                record = parse_update(message["data"])
                if record is not None:
                    snapshot.update(record)
                    dirty = True
                message = pubsub.get_message(timeout=0)
            if time.monotonic() >= rescan_at:
                snapshot = read(client)
                rescan_at = time.monotonic() + args.rescan
                dirty = True
            if status:
                status, dirty = "", True
        except RedisError as error:
            status, dirty = f"Redis: {error} (retrying)\n", True
            time.sleep(1)
        key = screen.key(0)
        if key in ("q", "Q"):
            return
        if key in ("w", "W"):
            window, dirty = next_window(snapshot.windows(), window), True
