"""The KPI table of one window as text: plain, or with ANSI colours for a terminal.

Pure (snapshot in, string out) so that the view can be tested by rendering a
known snapshot. Columns that do not fit the width are left out whole, from
the right, so a narrow terminal still shows the most important ones. A
flagged value carries a `!` as well as the colour, so breaches show without
colour too (and to colour-blind readers).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from streams.contract.event import CHANNELS
from streams.live.breaches import flagged
from streams.live.snapshot import Snapshot

BOLD: Final = "\x1b[1m"
DIM: Final = "\x1b[2m"
ALERT: Final = "\x1b[1;37;41m"  # bold white on red
RESET: Final = "\x1b[0m"
LABEL_WIDTH: Final = 26


def _percent(value: float) -> str:
    return f"{value * 100:.1f}%"


def _count(value: float) -> str:
    return f"{value:,.0f}"


def _signed(value: float) -> str:
    return f"{value:+.0f}"


def duration(seconds: float) -> str:
    """Short and fixed-ish width: 42s, 3m05s, 2h10m, 1d04h."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    if whole < 86400:
        return f"{whole // 3600}h{whole % 3600 // 60:02d}m"
    return f"{whole // 86400}d{whole % 86400 // 3600:02d}h"


@dataclass(frozen=True, slots=True)
class Column:
    title: str
    kpi: str
    width: int
    show: Callable[[float], str]


COLUMNS: Final = (
    Column("VOLUME", "volume", 7, _count),
    Column("QUEUE", "queue_now", 6, _count),
    Column("OLDEST", "oldest_waiting_seconds", 7, duration),
    Column("SL", "service_level", 7, _percent),
    Column("ANSWER", "answer_rate", 7, _percent),
    Column("ABAND", "abandonment_rate", 7, _percent),
    Column("FRT p90", "frt_p90_seconds", 7, duration),
    Column("FCR", "fcr_rate", 7, _percent),
    Column("ESC", "escalation_rate", 7, _percent),
    Column("CSAT", "csat", 7, _percent),
    Column("NPS", "nps", 5, _signed),
    Column("AHT", "aht_seconds", 7, duration),
)


def _label(record: dict[str, Any]) -> str:
    parts = [record["channel"], record["queue"]]
    if record.get("network") is not None:
        parts.append(record["network"])
    return "/".join(parts)


def _order(item: tuple[str, dict[str, Any]]) -> tuple[Any, ...]:
    """Channels in contract order, each led by its roll-up, then queues and networks."""
    record = item[1]
    channel = record["channel"]
    rank = CHANNELS.index(channel) if channel in CHANNELS else len(CHANNELS)
    queue = record["queue"]
    network = record.get("network")
    return (rank, channel, queue != "*", queue, network not in (None, "*"), network or "")


def _fitting(width: int) -> list[Column]:
    used = LABEL_WIDTH
    columns = []
    for column in COLUMNS:
        used += column.width + 2
        if used > width:
            break
        columns.append(column)
    return columns


def render(snapshot: Snapshot, window: str, width: int, color: bool, interactive: bool) -> str:
    """The whole screen: title, header, one line per record of `window`, legend
    (with the keys when `interactive`). The time shown is the end of the windows:
    the pipeline's clock, which is event time when it replays history."""
    rows = sorted(
        ((key, r) for key, r in snapshot.records.items() if r.get("window") == window),
        key=_order,
    )
    columns = _fitting(width)
    marked = 0
    lines = []
    for key, record in rows:
        flags = flagged(key, record, snapshot)
        marked += bool(flags)  # counted even when the column is cut off: look wider
        rollup = record["queue"] == "*" or record.get("network") == "*"
        label = _label(record)[:LABEL_WIDTH].ljust(LABEL_WIDTH)
        cells = [f"{BOLD}{label}{RESET}" if color and rollup else label]
        for column in columns:
            value = record.get("kpis", {}).get(column.kpi)
            text = "-" if value is None else column.show(value)
            bad = column.kpi in flags
            text += "!" if bad else " "
            padding = " " * (column.width + 1 - len(text))
            cells.append(f"{padding}{ALERT}{text}{RESET}" if color and bad else padding + text)
        lines.append(" ".join(cells).rstrip())
    ends = [record.get("window_end", "") for _, record in rows]
    until = f" to {max(ends).replace('T', ' ').replace('Z', ' UTC')}" if rows else ""
    others = [w for w in snapshot.windows() if w != window]
    title = f"cc-kpi top  window {window}{until}  {len(rows)} rows, {marked} with breaches"
    header = " ".join(
        [
            "CHANNEL/QUEUE/NETWORK".ljust(LABEL_WIDTH),
            *((c.title + " ").rjust(c.width + 1) for c in columns),
        ]
    )
    if not rows:
        lines = [f"no KPI records for window {window} in Redis yet"]
    legend = "! = misses its target or is in SLA breach"
    if interactive:
        legend += "    q quit"
        if others:
            legend += "    w window (" + ", ".join(others) + ")"
    header = header.rstrip()
    parts = [
        title[:width],
        (f"{DIM}{header}{RESET}" if color else header),
        *lines,
        "",
        legend[:width],
    ]
    return "\n".join(parts) + "\n"
