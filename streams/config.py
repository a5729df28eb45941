"""All configuration, from one TOML file and environment variables, checked at start-up.

Precedence: built-in defaults < the TOML file (`CC_CONFIG` or `--config`) <
environment variables. Every problem is reported as `ConfigError` naming the
key and what is wrong with it; unknown keys are errors too, so a typo never
silently falls back to a default.
"""

from __future__ import annotations

import contextlib
import hmac
import os
import re
import ssl
import tomllib
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final

from streams.allocator import ALLOCATORS

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


class Secret:
    """A password: masked in repr and str, so printing Settings, a log line or an
    error can never show it; `reveal()` is the only way to read it."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('********')"

    def __str__(self) -> str:
        return "********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(Secret)


KAFKA_PROTOCOLS: Final = ("PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL")
SASL_MECHANISMS: Final = ("SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN")


@dataclass(frozen=True, slots=True)
class KafkaSecurity:
    """How every Kafka client authenticates and encrypts (kafka.* keys and CC_KAFKA_*)."""

    protocol: str = "PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    username: str | None = None
    password: Secret | None = None
    cafile: str | None = None  # None with TLS: the system's trusted CAs
    certfile: str | None = None  # client certificate (mTLS); may also hold the key
    keyfile: str | None = None

    @property
    def sasl(self) -> bool:
        return self.protocol in ("SASL_PLAINTEXT", "SASL_SSL")

    @property
    def tls(self) -> bool:
        return self.protocol in ("SSL", "SASL_SSL")


@dataclass(frozen=True, slots=True)
class RedisAuth:
    """Redis ACL user and password, and the CA for a rediss:// URL."""

    username: str | None = None
    password: Secret | None = None
    cafile: str | None = None


OTHER: Final = "other"
"""Default name of the bucket that label values beyond the caps fold into."""


@dataclass(frozen=True, slots=True)
class LabelLimits:
    """Caps on the queue and network names that become keys, series and Redis keys
    ([labels]): the allow-listed names (every channel), plus per channel the first
    `max_*` other names seen; later names fold into the `other` bucket."""

    queues: frozenset[str] = frozenset()
    max_queues: int = 50
    networks: frozenset[str] = frozenset()
    max_networks: int = 20
    other: str = OTHER


@dataclass(frozen=True, slots=True)
class Settings:
    kafka_bootstrap: str = "127.0.0.1:9092"
    kafka_security: KafkaSecurity = field(default_factory=KafkaSecurity)
    redis_url: str = "redis://127.0.0.1:6379/0"  # never holds a password (see redis_auth)
    redis_auth: RedisAuth = field(default_factory=RedisAuth)
    redis_ttl_ms: int = 600_000
    app_id: str = "cc-kpi"
    data_dir: str = ".local/faust"
    topics: Topics = field(default_factory=Topics)
    internal_partitions: int = 8
    clock: str = "wall"
    allocator: str = "jemalloc"
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
    max_internal_backlog: int = 200_000
    max_input_skew_ms: int = 600_000
    stop_timeout_ms: int = 25_000
    metrics_addr: str = "127.0.0.1"
    metrics_port: int = 9100
    sla: SlaTable = field(
        default_factory=lambda: SlaTable(DEFAULT_TARGETS, DEFAULT_NETWORK_TARGETS, {})
    )
    labels: LabelLimits = field(default_factory=LabelLimits)

    def window_step_ms(self, span_ms: int) -> int:
        return span_ms // self.window_buckets

    def window_label(self, span_ms: int) -> str:
        return format_duration(span_ms)


# --- loading -----------------------------------------------------------------

_ENV: Final = {
    "CC_KAFKA_BOOTSTRAP": ("kafka", "bootstrap"),
    "CC_KAFKA_SECURITY_PROTOCOL": ("kafka", "security_protocol"),
    "CC_KAFKA_SASL_MECHANISM": ("kafka", "sasl_mechanism"),
    "CC_KAFKA_SASL_USERNAME": ("kafka", "sasl_username"),
    "CC_KAFKA_SSL_CAFILE": ("kafka", "ssl_cafile"),
    "CC_KAFKA_SSL_CERTFILE": ("kafka", "ssl_certfile"),
    "CC_KAFKA_SSL_KEYFILE": ("kafka", "ssl_keyfile"),
    "CC_REDIS_URL": ("redis", "url"),
    "CC_REDIS_USERNAME": ("redis", "username"),
    "CC_REDIS_SSL_CAFILE": ("redis", "ssl_cafile"),
    "CC_APP_ID": ("pipeline", "app_id"),
    "CC_DATA_DIR": ("pipeline", "data_dir"),
    "CC_CLOCK": ("pipeline", "clock"),
    "CC_ALLOCATOR": ("pipeline", "allocator"),
    "CC_LATENESS": ("pipeline", "lateness"),
    "CC_SNAPSHOT_INTERVAL": ("pipeline", "snapshot_interval"),
    "CC_PARTITIONS": ("pipeline", "partitions"),
    "CC_IDLE_TIMEOUT": ("pipeline", "idle_timeout"),
    "CC_MAX_INTERNAL_BACKLOG": ("pipeline", "max_internal_backlog"),
    "CC_MAX_INPUT_SKEW": ("pipeline", "max_input_skew"),
    "CC_STOP_TIMEOUT": ("pipeline", "stop_timeout"),
    "CC_METRICS_ADDR": ("metrics", "addr"),
    "CC_METRICS_PORT": ("metrics", "port"),
    "CC_LABELS_MAX_QUEUES": ("labels", "max_queues"),
    "CC_LABELS_MAX_NETWORKS": ("labels", "max_networks"),
}
"""Environment variables and the TOML key each one overrides."""

_SECTIONS: Final = {
    "kafka": {
        "bootstrap",
        "security_protocol",
        "sasl_mechanism",
        "sasl_username",
        "ssl_cafile",
        "ssl_certfile",
        "ssl_keyfile",
    },
    "redis": {"url", "ttl", "username", "ssl_cafile"},
    "topics": set(Topics.__dataclass_fields__),
    "pipeline": {
        "app_id",
        "data_dir",
        "partitions",
        "clock",
        "allocator",
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
        "max_internal_backlog",
        "max_input_skew",
        "stop_timeout",
    },
    "metrics": {"addr", "port"},
    "labels": {"queues", "max_queues", "networks", "max_networks", "other"},
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
    secrets = {section: _env_secret(env, name) for section, name in _SECRETS.items()}
    return _build(raw, secrets)


def _build(raw: Mapping[str, Any], secrets: Mapping[str, Secret | None] | None = None) -> Settings:
    secrets = secrets or {}
    for section, value in raw.items():
        if section not in _SECTIONS:
            raise ConfigError(section, f"unknown section (known: {', '.join(sorted(_SECTIONS))})")
        if not isinstance(value, dict):
            raise ConfigError(section, "must be a table")
        known = _SECTIONS[section]
        if known is not None:
            for key in value:
                if section in _SECRETS and "password" in key:
                    raise ConfigError(
                        f"{section}.{key}",
                        "passwords are not read from the config file; set "
                        f"{_SECRETS[section]} or {_SECRETS[section]}_FILE",
                    )
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
        raise ConfigError(
            "redis.url", f"expected a redis:// or rediss:// URL, got {redact_url(redis_url)!r}"
        )
    redis_url, redis_auth = _redis_auth(redis, redis_url, secrets.get("redis"))
    clock = text(pipe, "pipeline.clock", "clock", defaults.clock)
    if clock not in ("wall", "event"):
        raise ConfigError("pipeline.clock", f"expected 'wall' or 'event', got {clock!r}")
    allocator = text(pipe, "pipeline.allocator", "allocator", defaults.allocator)
    if allocator not in ALLOCATORS:
        expected = " or ".join(repr(name) for name in ALLOCATORS)
        raise ConfigError("pipeline.allocator", f"expected {expected}, got {allocator!r}")
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
    sla = _sla(raw.get("sla", {}), share)
    return Settings(
        kafka_bootstrap=text(kafka, "kafka.bootstrap", "bootstrap", defaults.kafka_bootstrap),
        kafka_security=_kafka_security(kafka, secrets.get("kafka")),
        redis_url=redis_url,
        redis_auth=redis_auth,
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
        allocator=allocator,
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
        max_internal_backlog=integer(
            pipe,
            "pipeline.max_internal_backlog",
            "max_internal_backlog",
            defaults.max_internal_backlog,
            1000,
            100_000_000,
        ),
        max_input_skew_ms=duration(
            "pipeline.max_input_skew", "max_input_skew", defaults.max_input_skew_ms
        ),
        stop_timeout_ms=duration("pipeline.stop_timeout", "stop_timeout", defaults.stop_timeout_ms),
        metrics_addr=metrics_addr,
        metrics_port=integer(metrics, "metrics.port", "port", defaults.metrics_port, 0, 65535),
        sla=sla,
        labels=_labels(raw.get("labels", {}), sla, integer),
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


def _labels(raw: Mapping[str, Any], sla: SlaTable, integer: Any) -> LabelLimits:
    """[labels]: allow-lists, per-channel caps and the name of the overflow bucket."""
    defaults = LabelLimits()

    def names(key: str, longest: int) -> frozenset[str]:
        value = raw.get(key, [])
        if not isinstance(value, list) or not all(
            isinstance(v, str) and 0 < len(v) <= longest for v in value
        ):
            raise ConfigError(
                f"labels.{key}", f"expected a list of names of 1 to {longest} characters"
            )
        reserved = sorted({*value} & {ALL, NO_NETWORK, UNKNOWN})
        if reserved:
            raise ConfigError(f"labels.{key}", f"{reserved[0]!r} is reserved, not a name to list")
        return frozenset(value)

    queues = names("queues", 64)
    networks = names("networks", 128)
    other = raw.get("other", defaults.other)
    if not isinstance(other, str) or not 0 < len(other) <= 64 or "|" in other:
        raise ConfigError(
            "labels.other", f"expected a name of 1 to 64 characters without '|', got {other!r}"
        )
    if other in (ALL, NO_NETWORK, UNKNOWN):
        raise ConfigError("labels.other", f"{other!r} is reserved")
    # The bucket must never be a name that is kept on its own.
    kept = queues | networks | {q for _, q in sla.queues} | set(sla.networks)
    if other in kept:
        raise ConfigError(
            "labels.other",
            f"{other!r} is also a queue or network name in [labels] or [sla]; pick another",
        )
    return LabelLimits(
        queues=queues,
        max_queues=integer(raw, "labels.max_queues", "max_queues", defaults.max_queues, 0, 10_000),
        networks=networks,
        max_networks=integer(
            raw, "labels.max_networks", "max_networks", defaults.max_networks, 0, 10_000
        ),
        other=other,
    )


# --- security ----------------------------------------------------------------

_SECRETS: Final = {"kafka": "CC_KAFKA_SASL_PASSWORD", "redis": "CC_REDIS_PASSWORD"}
"""Section -> the environment variable holding its password (or `<name>_FILE`, the
path of a file holding it, as Docker and Kubernetes secrets are mounted)."""


def _env_secret(env: Mapping[str, str], name: str) -> Secret | None:
    direct, path = env.get(name, ""), env.get(f"{name}_FILE", "")
    if direct and path:
        raise ConfigError(f"{name}_FILE", f"set either {name} or {name}_FILE, not both")
    if not path:
        return Secret(direct) if direct else None
    try:
        value = Path(path).read_text(encoding="utf-8").rstrip("\r\n")
    except FileNotFoundError:
        raise ConfigError(f"{name}_FILE", f"file {path!r} does not exist") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{name}_FILE", f"{path!r} is not UTF-8 text") from None
    except OSError as exc:
        raise ConfigError(f"{name}_FILE", f"cannot read {path!r}: {exc.strerror}") from None
    if not value:
        raise ConfigError(f"{name}_FILE", f"{path!r} is empty")
    return Secret(value)


def redact_url(url: str) -> str:
    """The URL with any password replaced by `***`, for messages."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:***@{host}").geturl()


def _optional(section: Mapping[str, Any], name: str, key: str) -> str | None:
    value = section.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(name, f"expected a non-empty string, got {value!r}")
    return value.strip()


def _pem_file(name: str, path: str | None) -> str | None:
    """`path` if it names an existing, readable file."""
    if path is None:
        return None
    file = Path(path)
    if not file.is_file():
        raise ConfigError(name, f"file {path!r} does not exist")
    try:
        with file.open("rb"):
            pass
    except OSError as exc:
        raise ConfigError(name, f"cannot read {path!r}: {exc.strerror}") from None
    return path


def _check_tls_files(
    prefix: str, cafile: str | None, certfile: str | None, keyfile: str | None
) -> None:
    """Load the CA and client certificate once here, so a wrong file stops start-up
    with its key named instead of failing inside a client later."""
    try:
        context = ssl.create_default_context(cafile=cafile)
    except ssl.SSLError as exc:
        raise ConfigError(
            f"{prefix}.ssl_cafile", f"{cafile!r} holds no usable PEM CA certificate ({exc.reason})"
        ) from None
    if certfile is not None:
        try:
            context.load_cert_chain(certfile, keyfile)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"{prefix}.ssl_certfile",
                f"cannot load the client certificate and key from {certfile!r} ({exc.reason})",
            ) from None


def _kafka_security(kafka: Mapping[str, Any], password: Secret | None) -> KafkaSecurity:
    protocol = _optional(kafka, "kafka.security_protocol", "security_protocol") or "PLAINTEXT"
    protocol = protocol.upper()
    if protocol not in KAFKA_PROTOCOLS:
        raise ConfigError(
            "kafka.security_protocol",
            f"expected one of {', '.join(KAFKA_PROTOCOLS)}, got {protocol!r}",
        )
    mechanism = (
        _optional(kafka, "kafka.sasl_mechanism", "sasl_mechanism") or "SCRAM-SHA-512"
    ).upper()
    if mechanism not in SASL_MECHANISMS:
        raise ConfigError(
            "kafka.sasl_mechanism",
            f"expected one of {', '.join(SASL_MECHANISMS)}, got {mechanism!r}",
        )
    security = KafkaSecurity(
        protocol=protocol,
        sasl_mechanism=mechanism,
        username=_optional(kafka, "kafka.sasl_username", "sasl_username"),
        password=password,
        cafile=_pem_file("kafka.ssl_cafile", _optional(kafka, "kafka.ssl_cafile", "ssl_cafile")),
        certfile=_pem_file(
            "kafka.ssl_certfile", _optional(kafka, "kafka.ssl_certfile", "ssl_certfile")
        ),
        keyfile=_pem_file(
            "kafka.ssl_keyfile", _optional(kafka, "kafka.ssl_keyfile", "ssl_keyfile")
        ),
    )
    # A credential next to a protocol that would not use it is a forgotten
    # security_protocol: connecting in plain text instead would be worse than stopping.
    if security.sasl:
        if security.username is None:
            raise ConfigError(
                "kafka.sasl_username",
                f"required with security_protocol {protocol} (CC_KAFKA_SASL_USERNAME)",
            )
        if password is None:
            raise ConfigError(
                _SECRETS["kafka"],
                f"required with kafka.security_protocol {protocol} (or {_SECRETS['kafka']}_FILE)",
            )
    elif security.username is not None or password is not None:
        which = "kafka.sasl_username" if security.username is not None else _SECRETS["kafka"]
        raise ConfigError(
            which, f"only used with security_protocol SASL_PLAINTEXT or SASL_SSL, not {protocol}"
        )
    if security.tls:
        if security.keyfile is not None and security.certfile is None:
            raise ConfigError(
                "kafka.ssl_keyfile", "needs kafka.ssl_certfile (the client certificate)"
            )
        _check_tls_files("kafka", security.cafile, security.certfile, security.keyfile)
    else:
        for key in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
            if key in kafka:
                raise ConfigError(
                    f"kafka.{key}",
                    f"only used with security_protocol SSL or SASL_SSL, not {protocol}",
                )
    return security


def _redis_auth(
    redis: Mapping[str, Any], url: str, password: Secret | None
) -> tuple[str, RedisAuth]:
    """Moves a password written into the URL out of it, so `redis_url` is safe to print."""
    username = _optional(redis, "redis.username", "username")
    parts = urllib.parse.urlsplit(url)
    if parts.username or parts.password is not None:
        in_url = urllib.parse.unquote(parts.username or "") or None
        if username is not None and in_url is not None and in_url != username:
            raise ConfigError("redis.username", "differs from the user name in redis.url")
        username = username or in_url
        if parts.password is not None:
            if password is not None:
                raise ConfigError(
                    "redis.url", f"holds a password and {_SECRETS['redis']} is set too; keep one"
                )
            password = Secret(urllib.parse.unquote(parts.password))
        url = parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()
    if username is not None and password is None:
        raise ConfigError(
            _SECRETS["redis"], "required with redis.username (or CC_REDIS_PASSWORD_FILE)"
        )
    cafile = _pem_file("redis.ssl_cafile", _optional(redis, "redis.ssl_cafile", "ssl_cafile"))
    if cafile is not None:
        if parts.scheme != "rediss":
            raise ConfigError("redis.ssl_cafile", "only used with a rediss:// (TLS) redis.url")
        _check_tls_files("redis", cafile, None, None)
    return url, RedisAuth(username=username, password=password, cafile=cafile)
