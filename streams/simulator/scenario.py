"""Scenario files: the parameters of one simulated contact center, from TOML.

A scenario is data, not code, so that a new situation (a storm, a strike, a
product launch) is a file anyone can read and change. Loading checks every
value and reports the first problem as `ScenarioError` naming the key, so a
typo or a nonsense value never turns into a silently different simulation.
All times of day are UTC.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Final

from streams.contract.event import CHANNELS

SCENARIO_DIR: Final = Path(__file__).parent / "scenarios"
SYNC_CHANNELS: Final = frozenset({"call", "chat"})
DAY_MS: Final = 86_400_000
HOUR_MS: Final = 3_600_000
WEEKDAYS: Final = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")

_DURATION: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": HOUR_MS, "d": DAY_MS}
_NAME: Final = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class ScenarioError(ValueError):
    """A bad scenario value: names the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Staffing:
    """Agents on duty per hour of the day, on the listed weekdays (none on the others)."""

    hourly: tuple[int, ...]  # 24 numbers
    days: frozenset[int]  # 0 = Monday

    def agents_at(self, ms: int) -> int:
        if (ms // DAY_MS + 3) % 7 not in self.days:  # 1970-01-01 was a Thursday
            return 0
        return self.hourly[ms % DAY_MS // HOUR_MS]

    @staticmethod
    def next_change(ms: int) -> int:
        """The next moment the number of agents may change: the next full hour."""
        return ms - ms % HOUR_MS + HOUR_MS


@dataclass(frozen=True, slots=True)
class QueueSpec:
    """One queue: its demand, its agents and how its contacts unfold."""

    channel: str
    name: str
    rate: float  # new contacts per hour, averaged over the day's profile
    profile: tuple[float, ...]  # 24 hourly weights with mean 1
    staffing: Staffing
    concurrency: int  # contacts one agent handles at once (chat)
    handle_ms: int  # mean work time per contact (call/chat) or per reply (email/social)
    handle_cv: float  # coefficient of variation of the (log-normal) work time
    pickup_ms: int  # call/chat: from an agent taking the contact to the first response
    wrap_ms: int  # after-contact work that keeps the agent busy
    hold_share: float
    hold_ms: int
    patience_ms: int | None  # mean patience in the queue (exponential); None = never gives up
    resolve: float
    transfer: float
    transfer_to: str | None
    escalate: float
    escalated_resolve: float
    reasons: tuple[tuple[str, float], ...]
    networks: tuple[tuple[str, float], ...]
    reply: float  # email/social: chance the customer writes again after a reply
    reply_delay_ms: int
    reopen: float
    reopen_delay_ms: int

    @property
    def key(self) -> str:
        return f"{self.channel}/{self.name}"


@dataclass(frozen=True, slots=True)
class Surge:
    """Arrivals of one queue multiplied by `factor` for a while (an incident, a storm)."""

    queue: str  # "<channel>/<name>"
    at_ms: int  # from the start of the run
    duration_ms: int
    factor: float
    network: str | None  # social: the extra contacts all come from this network


@dataclass(frozen=True, slots=True)
class RepeatSpec:
    """Customers coming back about the same need (what makes FCR meaningful)."""

    after_unresolved: float
    after_resolved: float
    after_abandoned: float
    delay_ms: int  # mean delay after an ended contact (exponential)
    retry_delay_ms: int  # mean delay after an abandoned one


@dataclass(frozen=True, slots=True)
class SurveySpec:
    """Who answers a survey, and how waiting and outcomes move the scores."""

    response_rate: float
    delay_ms: int
    base: float  # mean satisfaction (1-5 scale) of a resolved contact answered at once
    unresolved: float  # points lost when the contact was not resolved
    transferred: float
    escalated: float
    per_wait: float  # points lost per `wait_unit` of first-response wait ...
    max_wait_penalty: float  # ... up to this many
    noise: float  # standard deviation between customers
    wait_unit_ms: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Scenario:
    name: str
    description: str
    start_ms: int
    duration_ms: int
    queues: tuple[QueueSpec, ...]
    surges: tuple[Surge, ...]
    repeat: RepeatSpec
    surveys: SurveySpec


def available() -> list[str]:
    """Names of the scenarios shipped in the repository."""
    return sorted(path.stem for path in SCENARIO_DIR.glob("*.toml"))


def find(name_or_path: str) -> Path:
    """A shipped scenario by name (`normal-day`), or a TOML file by path."""
    path = Path(name_or_path)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ScenarioError("scenario", f"file {name_or_path!r} does not exist")
        return path
    shipped = SCENARIO_DIR / f"{name_or_path}.toml"
    if not shipped.is_file():
        known = ", ".join(available())
        raise ScenarioError("scenario", f"no scenario {name_or_path!r} (shipped: {known})")
    return shipped


def load(name_or_path: str) -> Scenario:
    path = find(name_or_path)
    return parse(_document(path, ()), default_name=path.stem)


def _document(path: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """The TOML document of `path`, merged over its `base` scenario if it names one."""
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ScenarioError(path.name, f"not valid TOML: {exc}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ScenarioError(path.name, f"cannot read: {exc}") from None
    base = raw.pop("base", None)  # the scenario this one changes
    if base is None:
        return raw
    if not isinstance(base, str):
        raise ScenarioError("base", f"expected a scenario name or file, got {base!r}")
    relative = path.parent / base
    base_path = find(str(relative) if relative.suffix == ".toml" else base)
    if base_path.resolve() in seen:
        raise ScenarioError("base", f"{path.name} is part of a cycle of base scenarios")
    merged = _merge(_document(base_path, (*seen, path.resolve())), raw)
    for own in ("name", "description"):  # a scenario's identity is not inherited
        if own not in raw:
            merged.pop(own, None)
    return merged


def _merge(base: dict[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` on top of `base`: tables merge key by key; a queue in `over` changes the
    base queue of the same channel and name (or adds one); surges are added."""
    merged = dict(base)
    for key, value in over.items():
        old = merged.get(key)
        if key == "queues" and isinstance(old, list) and isinstance(value, list):
            merged[key] = _merge_queues(old, value)
        elif key == "surges" and isinstance(old, list) and isinstance(value, list):
            merged[key] = [*old, *value]
        elif isinstance(old, dict) and isinstance(value, dict):
            merged[key] = _merge(old, value)
        else:
            merged[key] = value
    return merged


def _merge_queues(base: list[Any], over: list[Any]) -> list[Any]:
    queues = list(base)
    for change in over:
        for index, queue in enumerate(queues):
            same = isinstance(queue, dict) and isinstance(change, dict)
            if same and (queue.get("channel"), queue.get("name")) == (
                change.get("channel"),
                change.get("name"),
            ):
                queues[index] = _merge(queue, change)
                break
        else:
            queues.append(change)
    return queues


# --- validation ----------------------------------------------------------------


def _check_keys(table: Mapping[str, Any], prefix: str, allowed: frozenset[str]) -> None:
    for key in table:
        if key not in allowed:
            known = ", ".join(sorted(allowed))
            raise ScenarioError(_join(prefix, key), f"unknown key (known: {known})")


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


def _table(value: object, key: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(key, f"must be a table, got {value!r}")
    return value


def _number(value: object, key: str, low: float, high: float = float("inf")) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ScenarioError(key, f"expected a number, got {value!r}")
    if not low <= value <= high:
        bounds = f"at least {low:g}" if high == float("inf") else f"between {low:g} and {high:g}"
        raise ScenarioError(key, f"must be {bounds}, got {value!r}")
    return float(value)


def _share(value: object, key: str) -> float:
    return _number(value, key, 0.0, 1.0)


def _integer(value: object, key: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScenarioError(key, f"expected a whole number, got {value!r}")
    if value < low:
        raise ScenarioError(key, f"must be at least {low}, got {value}")
    return value


def parse_duration(value: object, key: str, allow_zero: bool = False) -> int:
    """'10m' -> 600000 ms; a bare number means seconds."""
    if isinstance(value, bool):
        ms = None
    elif isinstance(value, int | float):
        ms = round(value * 1000)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        ms = round(float(match.group(1)) * _UNIT_MS[match.group(2)])
    else:
        ms = None
    if ms is None or ms < 0:
        raise ScenarioError(key, f"expected a duration like '90s', '10m' or '2h', got {value!r}")
    if ms == 0 and not allow_zero:
        raise ScenarioError(key, f"must be longer than zero, got {value!r}")
    return ms


def _name(value: object, key: str) -> str:
    if not isinstance(value, str) or not _NAME.match(value):
        raise ScenarioError(
            key, f"expected a name of letters, digits, '.', '_' or '-', got {value!r}"
        )
    return value


def _weights(value: object, key: str) -> tuple[tuple[str, float], ...]:
    table = _table(value, key)
    if not table:
        raise ScenarioError(key, "must name at least one entry")
    weights = tuple(
        (_name(name, f"{key}.{name}"), _number(w, f"{key}.{name}", 0.0))
        for name, w in table.items()
    )
    if sum(w for _, w in weights) <= 0:
        raise ScenarioError(key, "the weights must not all be zero")
    return weights


def parse_start(value: object, key: str) -> int:
    """A date-time with offset (TOML datetime or RFC 3339 text), or a date (its
    midnight UTC) -> epoch ms."""
    moment = value
    if isinstance(moment, str):
        try:
            moment = datetime.fromisoformat(moment.replace("Z", "+00:00"))
        except ValueError:
            moment = None
    if isinstance(moment, date) and not isinstance(moment, datetime):
        moment = datetime(moment.year, moment.month, moment.day, tzinfo=UTC)
    if not isinstance(moment, datetime) or moment.tzinfo is None:
        raise ScenarioError(
            key, f"expected a date-time with offset like 2026-11-23T00:00:00Z, got {value!r}"
        )
    return round(moment.timestamp() * 1000)


def _profile(
    value: object, key: str, profiles: Mapping[str, tuple[float, ...]]
) -> tuple[float, ...]:
    if isinstance(value, str):
        if value not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ScenarioError(key, f"unknown profile {value!r} (profiles: {known})")
        return profiles[value]
    return _hourly(value, key)


def _hourly(value: object, key: str) -> tuple[float, ...]:
    if not isinstance(value, list) or len(value) != 24:
        raise ScenarioError(key, f"expected 24 hourly weights, got {value!r}")
    weights = [_number(w, f"{key}[{hour}]", 0.0) for hour, w in enumerate(value)]
    mean = sum(weights) / 24
    if mean <= 0:
        raise ScenarioError(key, "the weights must not all be zero")
    return tuple(w / mean for w in weights)


def _staffing(agents: object, days: object, key: str) -> Staffing:
    """`agents`: one number for the whole day, or 24 numbers, one per hour."""
    if isinstance(agents, list):
        if len(agents) != 24:
            raise ScenarioError(f"{key}.agents", f"expected 24 hourly numbers, got {len(agents)}")
        counts = [_integer(n, f"{key}.agents[{hour}]", 0) for hour, n in enumerate(agents)]
    else:
        counts = [_integer(agents, f"{key}.agents", 0)] * 24
    if not isinstance(days, list) or not days:
        raise ScenarioError(f"{key}.days", f"expected a list like ['mon', 'tue'], got {days!r}")
    numbers = set()
    for day in days:
        if day not in WEEKDAYS:
            raise ScenarioError(f"{key}.days", f"unknown day {day!r} (days: {', '.join(WEEKDAYS)})")
        numbers.add(WEEKDAYS.index(day))
    return Staffing(tuple(counts), frozenset(numbers))


_QUEUE_KEYS: Final = frozenset(
    {
        "rate",
        "profile",
        "agents",
        "days",
        "concurrency",
        "handle",
        "handle_cv",
        "pickup",
        "wrap",
        "hold_share",
        "hold",
        "patience",
        "resolve",
        "transfer",
        "transfer_to",
        "escalate",
        "escalated_resolve",
        "reasons",
        "networks",
        "reply",
        "reply_delay",
        "reopen",
        "reopen_delay",
    }
)
_SYNC_ONLY: Final = frozenset({"patience", "pickup", "hold_share", "hold"})
_ASYNC_ONLY: Final = frozenset({"reply", "reply_delay", "reopen", "reopen_delay"})


def _check_kind(table: Mapping[str, Any], channel: str, key: str) -> None:
    """Reject knobs of the other kind of channel: they would be silently ignored."""
    not_here = _ASYNC_ONLY if channel in SYNC_CHANNELS else _SYNC_ONLY
    for field in sorted(not_here & set(table)):
        kind = "email and social" if channel in SYNC_CHANNELS else "call and chat"
        raise ScenarioError(f"{key}.{field}", f"only applies to {kind} queues")


_QUEUE_DEFAULTS: Final[Mapping[str, Any]] = {
    "profile": [1] * 24,
    "days": list(WEEKDAYS),
    "concurrency": 1,
    "handle_cv": 0.6,
    "pickup": 0,
    "wrap": 0,
    "hold_share": 0.0,
    "hold": "1m",
    "resolve": 0.85,
    "transfer": 0.0,
    "escalate": 0.0,
    "escalated_resolve": 0.7,
    "reply": 0.0,
    "reply_delay": "2h",
    "reopen": 0.0,
    "reopen_delay": "1d",
}


def _queue(
    raw: Mapping[str, Any],
    index: int,
    channel_defaults: Mapping[str, Mapping[str, Any]],
    profiles: Mapping[str, tuple[float, ...]],
) -> QueueSpec:
    where = f"queues[{index}]"
    table = _table(raw, where)
    _check_keys(table, where, _QUEUE_KEYS | {"channel", "name"})
    channel = table.get("channel")
    if channel not in CHANNELS:
        raise ScenarioError(
            f"{where}.channel", f"expected one of {', '.join(CHANNELS)}, got {channel!r}"
        )
    name = _name(table.get("name"), f"{where}.name")
    key = f"queues.{channel}/{name}"
    values = {**_QUEUE_DEFAULTS, **channel_defaults.get(channel, {}), **table}
    _check_kind(table, channel, key)
    for required in ("rate", "agents", "handle"):
        if required not in values:
            raise ScenarioError(
                f"{key}.{required}", "is required (here or in [channels.<channel>])"
            )
    networks: tuple[tuple[str, float], ...] = ()
    if channel == "social":
        if "networks" not in values:
            raise ScenarioError(f"{key}.networks", "is required for social queues")
        networks = _weights(values["networks"], f"{key}.networks")
    elif "networks" in values:
        raise ScenarioError(f"{key}.networks", "only applies to social queues")
    transfer = _share(values["transfer"], f"{key}.transfer")
    transfer_to = values.get("transfer_to")
    if transfer_to is not None:
        transfer_to = _name(transfer_to, f"{key}.transfer_to")
    if transfer > 0 and transfer_to is None:
        raise ScenarioError(f"{key}.transfer_to", "is required when transfer is above 0")
    patience = values.get("patience")
    return QueueSpec(
        channel=channel,
        name=name,
        rate=_number(values["rate"], f"{key}.rate", 0.0),
        profile=_profile(values["profile"], f"{key}.profile", profiles),
        staffing=_staffing(values["agents"], values["days"], key),
        concurrency=_integer(values["concurrency"], f"{key}.concurrency", 1),
        handle_ms=parse_duration(values["handle"], f"{key}.handle"),
        handle_cv=_number(values["handle_cv"], f"{key}.handle_cv", 0.0, 5.0),
        pickup_ms=parse_duration(values["pickup"], f"{key}.pickup", allow_zero=True),
        wrap_ms=parse_duration(values["wrap"], f"{key}.wrap", allow_zero=True),
        hold_share=_share(values["hold_share"], f"{key}.hold_share"),
        hold_ms=parse_duration(values["hold"], f"{key}.hold"),
        patience_ms=None if patience is None else parse_duration(patience, f"{key}.patience"),
        resolve=_share(values["resolve"], f"{key}.resolve"),
        transfer=transfer,
        transfer_to=transfer_to,
        escalate=_share(values["escalate"], f"{key}.escalate"),
        escalated_resolve=_share(values["escalated_resolve"], f"{key}.escalated_resolve"),
        reasons=_weights(values["reasons"], f"{key}.reasons") if "reasons" in values else (),
        networks=networks,
        reply=_number(values["reply"], f"{key}.reply", 0.0, 0.95),
        reply_delay_ms=parse_duration(values["reply_delay"], f"{key}.reply_delay"),
        reopen=_share(values["reopen"], f"{key}.reopen"),
        reopen_delay_ms=parse_duration(values["reopen_delay"], f"{key}.reopen_delay"),
    )


def _surge(raw: object, index: int, queues: Mapping[str, QueueSpec], duration_ms: int) -> Surge:
    where = f"surges[{index}]"
    table = _table(raw, where)
    _check_keys(table, where, frozenset({"queue", "at", "duration", "factor", "network"}))
    for required in ("queue", "at", "duration", "factor"):
        if required not in table:
            raise ScenarioError(f"{where}.{required}", "is required")
    queue = table["queue"]
    if queue not in queues:
        known = ", ".join(queues)
        raise ScenarioError(f"{where}.queue", f"no queue {queue!r} (queues: {known})")
    at_ms = parse_duration(table["at"], f"{where}.at", allow_zero=True)
    if at_ms >= duration_ms:
        raise ScenarioError(f"{where}.at", "starts after the end of the run")
    factor = _number(table["factor"], f"{where}.factor", 0.0)
    network = table.get("network")
    if network is not None:
        names = [name for name, _ in queues[queue].networks]
        if network not in names:
            raise ScenarioError(f"{where}.network", f"{network!r} is not a network of {queue}")
        if factor < 1:
            raise ScenarioError(f"{where}.factor", "must be at least 1 when a network is named")
    return Surge(
        queue, at_ms, parse_duration(table["duration"], f"{where}.duration"), factor, network
    )


def _repeat(raw: object) -> RepeatSpec:
    table = _table(raw, "repeat")
    fields = ("after_unresolved", "after_resolved", "after_abandoned", "delay", "retry_delay")
    _check_keys(table, "repeat", frozenset(fields))
    values = {
        "after_unresolved": 0.5,
        "after_resolved": 0.05,
        "after_abandoned": 0.5,
        "delay": "1d",
        "retry_delay": "15m",
        **table,
    }
    return RepeatSpec(
        after_unresolved=_share(values["after_unresolved"], "repeat.after_unresolved"),
        after_resolved=_share(values["after_resolved"], "repeat.after_resolved"),
        after_abandoned=_share(values["after_abandoned"], "repeat.after_abandoned"),
        delay_ms=parse_duration(values["delay"], "repeat.delay"),
        retry_delay_ms=parse_duration(values["retry_delay"], "repeat.retry_delay"),
    )


def _surveys(raw: object) -> SurveySpec:
    table = _table(raw, "surveys")
    defaults: dict[str, Any] = {
        "response_rate": 0.2,
        "delay": "2h",
        "base": 4.5,
        "unresolved": 1.8,
        "transferred": 0.4,
        "escalated": 0.3,
        "per_wait": 0.5,
        "max_wait_penalty": 2.5,
        "noise": 0.7,
        "wait_unit": {"call": "1m", "chat": "2m", "email": "12h", "social": "2h"},
    }
    _check_keys(table, "surveys", frozenset(defaults))
    values = {**defaults, **table}
    units = _table(values["wait_unit"], "surveys.wait_unit")
    _check_keys(units, "surveys.wait_unit", frozenset(CHANNELS))
    wait_unit = {
        channel: parse_duration(
            units.get(channel, defaults["wait_unit"][channel]), f"surveys.wait_unit.{channel}"
        )
        for channel in CHANNELS
    }
    return SurveySpec(
        response_rate=_share(values["response_rate"], "surveys.response_rate"),
        delay_ms=parse_duration(values["delay"], "surveys.delay"),
        base=_number(values["base"], "surveys.base", 1.0, 5.0),
        unresolved=_number(values["unresolved"], "surveys.unresolved", 0.0, 4.0),
        transferred=_number(values["transferred"], "surveys.transferred", 0.0, 4.0),
        escalated=_number(values["escalated"], "surveys.escalated", 0.0, 4.0),
        per_wait=_number(values["per_wait"], "surveys.per_wait", 0.0, 4.0),
        max_wait_penalty=_number(values["max_wait_penalty"], "surveys.max_wait_penalty", 0.0, 4.0),
        noise=_number(values["noise"], "surveys.noise", 0.0, 4.0),
        wait_unit_ms=wait_unit,
    )


_TOP_KEYS: Final = frozenset(
    {
        "name",
        "description",
        "start",
        "duration",
        "profiles",
        "channels",
        "queues",
        "surges",
        "repeat",
        "surveys",
    }
)


def parse(raw: Mapping[str, Any], default_name: str = "scenario") -> Scenario:
    """A scenario from its TOML document (already parsed)."""
    _check_keys(raw, "", _TOP_KEYS)
    profiles = {
        _name(name, f"profiles.{name}"): _hourly(weights, f"profiles.{name}")
        for name, weights in _table(raw.get("profiles", {}), "profiles").items()
    }
    channels = _table(raw.get("channels", {}), "channels")
    _check_keys(channels, "channels", frozenset(CHANNELS))
    for channel, defaults in channels.items():
        _check_keys(_table(defaults, f"channels.{channel}"), f"channels.{channel}", _QUEUE_KEYS)
        _check_kind(defaults, channel, f"channels.{channel}")
    queue_list = raw.get("queues")
    if not isinstance(queue_list, list) or not queue_list:
        raise ScenarioError("queues", "at least one [[queues]] table is required")
    queues: dict[str, QueueSpec] = {}
    for index, table in enumerate(queue_list, 1):  # numbered from 1 in messages
        spec = _queue(table, index, channels, profiles)
        if spec.key in queues:
            raise ScenarioError(f"queues[{index}]", f"queue {spec.key} is defined twice")
        queues[spec.key] = spec
    for spec in queues.values():
        target = f"{spec.channel}/{spec.transfer_to}"
        if spec.transfer_to is not None and (target not in queues or target == spec.key):
            raise ScenarioError(
                f"queues.{spec.key}.transfer_to",
                f"must name another {spec.channel} queue, got {spec.transfer_to!r}",
            )
    duration_ms = parse_duration(raw.get("duration", "24h"), "duration")
    surges = raw.get("surges", [])
    if not isinstance(surges, list):
        raise ScenarioError("surges", "must be a list of [[surges]] tables")
    description = raw.get("description", "")
    if not isinstance(description, str):
        raise ScenarioError("description", f"expected a string, got {description!r}")
    return Scenario(
        name=_name(raw.get("name", default_name), "name"),
        description=description,
        start_ms=parse_start(raw.get("start", "2026-11-23T00:00:00Z"), "start"),
        duration_ms=duration_ms,
        queues=tuple(queues.values()),
        surges=tuple(_surge(s, i, queues, duration_ms) for i, s in enumerate(surges, 1)),
        repeat=_repeat(raw.get("repeat", {})),
        surveys=_surveys(raw.get("surveys", {})),
    )
