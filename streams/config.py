"""All configuration, from one TOML file and environment variables, checked at start-up.

Precedence: built-in defaults < the TOML file (`CC_CONFIG` or `--config`) <
environment variables. Every problem is reported as `ConfigError` naming the
key and what is wrong with it; unknown keys are errors too, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import contextlib
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

CHANNELS: Final = ("call", "chat", "email", "social")
UNKNOWN: Final = "unknown"
NO_NETWORK: Final = "-"
ALL: Final = "*"


class ConfigError(ValueError):
    """A bad configuration value: names the key and the problem."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key = key
        self.problem = problem


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)\s*$")
_UNIT_MS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


def parse_duration_ms(key: str, value: object) -> int:
    """'10m' -> 600000; a bare number means seconds."""
    if isinstance(value, bool):
        raise ConfigError(key, f"expected a duration like '10m' or '30s', got {value!r}")
    if isinstance(value, int | float):
        ms = round(value * 1000)
    elif isinstance(value, str) and (match := _DURATION.match(value)):
        ms = round(float(match.group(1)) * _UNIT_MS[match.group(2)])
    else:
        raise ConfigError(key, f"expected a duration like '10m' or '30s', got {value!r}")
    if ms <= 0:
        raise ConfigError(key, f"must be positive, got {value!r}")
    return ms


def format_duration(ms: int) -> str:
    """A window label as the spec writes them: 300000 -> '5m', one day -> '24h'."""
    for unit in ("h", "m", "s"):
        if ms % _UNIT_MS[unit] == 0:
            return f"{ms // _UNIT_MS[unit]}{unit}"
    return f"{ms}ms"


@dataclass(frozen=True, slots=True)
class Targets:
    """SLA targets of one (channel, network, queue); None = no target for that KPI."""

    frt_seconds: float | None = None
    service_level: float | None = None
    answer_rate: float | None = None
    abandonment_rate: float | None = None
    fcr_rate: float | None = 0.75
    escalation_rate: float | None = 0.15
    csat: float | None = 0.8


_RATIO_TARGETS: Final = (
    "service_level",
    "answer_rate",
    "abandonment_rate",
    "fcr_rate",
    "escalation_rate",
    "csat",
)

DEFAULT_TARGETS: Final[Mapping[str, Targets]] = {
    "call": Targets(frt_seconds=30, service_level=0.8, answer_rate=0.9, abandonment_rate=0.10),
    "chat": Targets(frt_seconds=60, service_level=0.8, abandonment_rate=0.10),
    "email": Targets(frt_seconds=86_400, service_level=0.9),
    "social": Targets(frt_seconds=7_200, service_level=0.9),
    UNKNOWN: Targets(),
}
DEFAULT_NETWORK_TARGETS: Final[Mapping[str, Mapping[str, Any]]] = {
    "twitter": {"frt_seconds": 3_600},
}


@dataclass(frozen=True, slots=True)
class SlaTable:
    """Targets by channel, with overrides per social network and per queue."""

    channels: Mapping[str, Targets]
    networks: Mapping[str, Mapping[str, Any]]
    queues: Mapping[tuple[str, str], Mapping[str, Any]]

    def targets(self, channel: str, queue: str, network: str) -> Targets:
        """Queue override beats network override beats the channel's targets."""
        base = self.channels.get(channel) or self.channels[UNKNOWN]
        if channel == "social" and network in self.networks:
            base = replace(base, **self.networks[network])
        override = self.queues.get((channel, queue))
        return replace(base, **override) if override else base


@dataclass(frozen=True, slots=True)
class Topics:
    calls: str = "cc.calls"
    chats: str = "cc.chats"
    emails: str = "cc.emails"
    social: str = "cc.social"
    surveys: str = "cc.surveys"
    kpis: str = "cc.kpis"
    sla: str = "cc.sla"
    deadletter: str = "cc.deadletter"

    def inputs(self) -> dict[str, str | None]:
        """Input topic -> the channel it implies (None for surveys)."""
        return {
            self.calls: "call",
            self.chats: "chat",
            self.emails: "email",
            self.social: "social",
            self.surveys: None,
        }


@dataclass(frozen=True, slots=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    redis_url: str = "redis://127.0.0.1:6379/0"
    redis_ttl_ms: int = 600_000
    app_id: str = "cc-kpi"
    data_dir: str = ".local/faust"
    topics: Topics = field(default_factory=Topics)
    internal_partitions: int = 8
    clock: str = "wall"
    windows_ms: tuple[int, ...] = (300_000, 3_600_000, 86_400_000)
    window_buckets: int = 60
    lateness_ms: int = 600_000
    idle_timeout_ms: int = 30_000
    short_abandon_ms: int = 5_000
    repeat_window_ms: int = 7 * 86_400_000
    closed_retention_ms: int = 86_400_000
    open_ttl_ms: int = 7 * 86_400_000
    snapshot_interval_ms: int = 5_000
    alert_window_ms: int = 3_600_000
    min_contacts: int = 20
    at_risk_share: float = 0.8
    max_event_bytes: int = 64 * 1024
    max_message_bytes: int = 1024 * 1024
    max_batch_events: int = 1000
    metrics_addr: str = "127.0.0.1"
    metrics_port: int = 9100
    sla: SlaTable = field(
        default_factory=lambda: SlaTable(DEFAULT_TARGETS, DEFAULT_NETWORK_TARGETS, {})
    )

    def window_step_ms(self, span_ms: int) -> int:
        return span_ms // self.window_buckets

    def window_label(self, span_ms: int) -> str:
        return format_duration(span_ms)


# --- loading -----------------------------------------------------------------

_ENV: Final = {
    "CC_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "CC_REDIS_URL": ("redis", "url"),
    "CC_APP_ID": ("pipeline", "app_id"),
    "CC_DATA_DIR": ("pipeline", "data_dir"),
    "CC_CLOCK": ("pipeline", "clock"),
    "CC_LATENESS": ("pipeline", "lateness"),
    "CC_SNAPSHOT_INTERVAL": ("pipeline", "snapshot_interval"),
    "CC_PARTITIONS": ("pipeline", "partitions"),
    "CC_IDLE_TIMEOUT": ("pipeline", "idle_timeout"),
    "CC_METRICS_ADDR": ("metrics", "addr"),
    "CC_METRICS_PORT": ("metrics", "port"),
}
"""Environment variables and the TOML key each one overrides."""

_SECTIONS: Final = {
    "kafka": {"bootstrap"},
    "redis": {"url", "ttl"},
    "topics": set(Topics.__dataclass_fields__),
    "pipeline": {
        "app_id",
        "data_dir",
        "partitions",
        "clock",
        "windows",
        "window_buckets",
        "lateness",
        "idle_timeout",
        "short_abandon",
        "repeat_window",
        "closed_retention",
        "open_ttl",
        "snapshot_interval",
        "alert_window",
        "min_contacts",
        "at_risk_share",
        "max_event_bytes",
        "max_message_bytes",
        "max_batch_events",
    },
    "metrics": {"addr", "port"},
    "sla": None,
}
_TARGET_KEYS: Final = set(Targets.__dataclass_fields__)


def load_settings(path: str | Path | None = None, env: Mapping[str, str] | None = None) -> Settings:
    """Read the TOML file (if any), apply the environment, validate everything."""
    env = os.environ if env is None else env
    path = path if path is not None else env.get("CC_CONFIG") or None
    raw: dict[str, Any] = {}
    if path is not None:
        try:
            raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError("CC_CONFIG", f"config file {str(path)!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError("CC_CONFIG", f"cannot read {str(path)!r}: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError("CC_CONFIG", f"{str(path)!r} is not valid TOML: {exc}") from None
    for name, (section, key) in _ENV.items():
        if name in env and env[name] != "":
            raw.setdefault(section, {})
            if not isinstance(raw[section], dict):
                raise ConfigError(section, "must be a table")
            raw[section][key] = env[name]
    return _build(raw)


def _build(raw: Mapping[str, Any]) -> Settings:
    for section, value in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(section, f"unknown section (known: {', '.join(sorted(_SECTIONS))})")
        if not isinstance(value, dict):
            raise ConfigError(section, "must be a table")
        known = _SECTIONS[section]
        if known is not None:
            for key in value:
                if key not in known:
                    raise ConfigError(f"{section}.{key}", "unknown key")
    kafka = raw.get("kafka", {})
    redis = raw.get("redis", {})
    pipe = raw.get("pipeline", {})
    metrics = raw.get("metrics", {})
    defaults = Settings()

    def text(section: Mapping[str, Any], name: str, key: str, default: str) -> str:
        value = section.get(key, default)
        if not isinstance(value, str) or not value.strip():
            raise ConfigError(name, f"expected a non-empty string, got {value!r}")
        return value.strip()

    def integer(
        section: Mapping[str, Any], name: str, key: str, default: int, lo: int, hi: int
    ) -> int:
        value = section.get(key, default)
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(name, f"expected an integer, got {value!r}")
        if not lo <= value <= hi:
            raise ConfigError(name, f"must be between {lo} and {hi}, got {value}")
        return value

    def duration(name: str, key: str, default: int) -> int:
        return parse_duration_ms(name, pipe[key]) if key in pipe else default

    def share(name: str, value: object) -> float:
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                value = float(value)
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ConfigError(name, f"expected a number between 0 and 1, got {value!r}")
        if not 0 <= value <= 1:
            raise ConfigError(name, f"must be between 0 and 1, got {value}")
        return float(value)

    redis_url = text(redis, "redis.url", "url", defaults.redis_url)
    if not redis_url.startswith(("redis://", "rediss://", "unix://")):
        raise ConfigError("redis.url", f"expected a redis:// or rediss:// URL, got {redis_url!r}")
    clock = text(pipe, "pipeline.clock", "clock", defaults.clock)
    if clock not in ("wall", "event"):
        raise ConfigError("pipeline.clock", f"expected 'wall' or 'event', got {clock!r}")
    buckets = integer(
        pipe, "pipeline.window_buckets", "window_buckets", defaults.window_buckets, 1, 10_000
    )
    windows_raw = pipe.get("windows", ["5m", "1h", "24h"])
    if isinstance(windows_raw, str):
        windows_raw = [w for w in windows_raw.split(",") if w.strip()]
    if not isinstance(windows_raw, list) or not windows_raw:
        raise ConfigError(
            "pipeline.windows", f"expected a list like ['5m', '1h'], got {windows_raw!r}"
        )
    windows = tuple(sorted({parse_duration_ms("pipeline.windows", w) for w in windows_raw}))
    for span in windows:
        if span % buckets or (span // buckets) % 1000:
            raise ConfigError(
                "pipeline.windows",
                f"window {format_duration(span)} does not split into {buckets} buckets of whole "
                "seconds (change pipeline.window_buckets or the window)",
            )
    alert_window = duration("pipeline.alert_window", "alert_window", defaults.alert_window_ms)
    if alert_window not in windows:
        raise ConfigError(
            "pipeline.alert_window",
            f"{format_duration(alert_window)} is not one of pipeline.windows",
        )
    metrics_addr = text(metrics, "metrics.addr", "addr", defaults.metrics_addr)
    topics = _topics(raw.get("topics", {}))
    return Settings(
        kafka_bootstrap=text(kafka, "kafka.bootstrap", "bootstrap", defaults.kafka_bootstrap),
        redis_url=redis_url,
        redis_ttl_ms=parse_duration_ms("redis.ttl", redis["ttl"])
        if "ttl" in redis
        else defaults.redis_ttl_ms,
        app_id=text(pipe, "pipeline.app_id", "app_id", defaults.app_id),
        data_dir=text(pipe, "pipeline.data_dir", "data_dir", defaults.data_dir),
        topics=topics,
        internal_partitions=integer(
            pipe, "pipeline.partitions", "partitions", defaults.internal_partitions, 1, 1024
        ),
        clock=clock,
        windows_ms=windows,
        window_buckets=buckets,
        lateness_ms=duration("pipeline.lateness", "lateness", defaults.lateness_ms),
        idle_timeout_ms=duration("pipeline.idle_timeout", "idle_timeout", defaults.idle_timeout_ms),
        short_abandon_ms=duration(
            "pipeline.short_abandon", "short_abandon", defaults.short_abandon_ms
        ),
        repeat_window_ms=duration(
            "pipeline.repeat_window", "repeat_window", defaults.repeat_window_ms
        ),
        closed_retention_ms=duration(
            "pipeline.closed_retention", "closed_retention", defaults.closed_retention_ms
        ),
        open_ttl_ms=duration("pipeline.open_ttl", "open_ttl", defaults.open_ttl_ms),
        snapshot_interval_ms=duration(
            "pipeline.snapshot_interval", "snapshot_interval", defaults.snapshot_interval_ms
        ),
        alert_window_ms=alert_window,
        min_contacts=integer(
            pipe, "pipeline.min_contacts", "min_contacts", defaults.min_contacts, 0, 1_000_000
        ),
        at_risk_share=share(
            "pipeline.at_risk_share", pipe.get("at_risk_share", defaults.at_risk_share)
        ),
        max_event_bytes=integer(
            pipe,
            "pipeline.max_event_bytes",
            "max_event_bytes",
            defaults.max_event_bytes,
            256,
            16 * 1024 * 1024,
        ),
        max_message_bytes=integer(
            pipe,
            "pipeline.max_message_bytes",
            "max_message_bytes",
            defaults.max_message_bytes,
            256,
            64 * 1024 * 1024,
        ),
        max_batch_events=integer(
            pipe,
            "pipeline.max_batch_events",
            "max_batch_events",
            defaults.max_batch_events,
            1,
            100_000,
        ),
        metrics_addr=metrics_addr,
        metrics_port=integer(metrics, "metrics.port", "port", defaults.metrics_port, 0, 65535),
        sla=_sla(raw.get("sla", {}), share),
    )


def _topics(raw: Mapping[str, Any]) -> Topics:
    values = {}
    for key, value in raw.items():
        if not isinstance(value, str) or not re.fullmatch(r"[A-Za-z0-9._-]{1,249}", value):
            raise ConfigError(f"topics.{key}", f"not a valid Kafka topic name: {value!r}")
        values[key] = value
    topics = Topics(**values)
    names = [getattr(topics, f) for f in Topics.__dataclass_fields__]
    if len(set(names)) != len(names):
        raise ConfigError("topics", "two topics have the same name")
    return topics


def _sla(raw: Mapping[str, Any], share: Any) -> SlaTable:
    """[sla.<channel>], [sla.social.networks.<network>], [sla.queues."<channel>/<queue>"]."""

    def overrides(prefix: str, table: object) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise ConfigError(prefix, "must be a table")
        out: dict[str, Any] = {}
        for key, value in table.items():
            name = f"{prefix}.{key}"
            if key not in _TARGET_KEYS:
                raise ConfigError(
                    name, f"unknown SLA target (known: {', '.join(sorted(_TARGET_KEYS))})"
                )
            if key == "frt_seconds":
                if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                    raise ConfigError(name, f"expected a positive number of seconds, got {value!r}")
                out[key] = float(value)
            else:
                out[key] = share(name, value)
        return out

    channels = dict(DEFAULT_TARGETS)
    networks = {k: dict(v) for k, v in DEFAULT_NETWORK_TARGETS.items()}
    queues: dict[tuple[str, str], dict[str, Any]] = {}
    for key, table in raw.items():
        if key == "queues":
            if not isinstance(table, dict):
                raise ConfigError("sla.queues", "must be a table")
            for name, queue_table in table.items():
                channel, sep, queue = name.partition("/")
                if not sep or channel not in CHANNELS or not queue:
                    raise ConfigError(
                        f"sla.queues.{name}",
                        "queue overrides are named '<channel>/<queue>', "
                        'e.g. [sla.queues."call/billing"]',
                    )
                queues[(channel, queue)] = overrides(f"sla.queues.{name}", queue_table)
        elif key in CHANNELS:
            if not isinstance(table, dict):
                raise ConfigError(f"sla.{key}", "must be a table")
            table = dict(table)
            if key == "social" and "networks" in table:
                nets = table.pop("networks")
                if not isinstance(nets, dict):
                    raise ConfigError("sla.social.networks", "must be a table")
                for net, net_table in nets.items():
                    networks[net] = {
                        **networks.get(net, {}),
                        **overrides(f"sla.social.networks.{net}", net_table),
                    }
            channels[key] = replace(channels[key], **overrides(f"sla.{key}", table))
        else:
            raise ConfigError(
                f"sla.{key}", f"unknown channel (known: {', '.join(CHANNELS)}, queues)"
            )
    return SlaTable(channels, networks, queues)
