"""Configuration: defaults, TOML, environment, and clear errors naming the key."""

from pathlib import Path

import pytest

from streams.config import ConfigError, load_settings, parse_duration_ms


def write(tmp_path, text):
    path = tmp_path / "cc.toml"
    path.write_text(text)
    return path


def test_defaults_follow_the_spec():
    s = load_settings(env={})
    assert s.windows_ms == (300_000, 3_600_000, 86_400_000)
    assert s.lateness_ms == 600_000 and s.short_abandon_ms == 5_000
    assert s.repeat_window_ms == 7 * 86_400_000 and s.clock == "wall"
    assert s.min_contacts == 20 and s.alert_window_ms == 3_600_000
    call = s.sla.targets("call", "billing", "-")
    assert (call.frt_seconds, call.service_level, call.answer_rate, call.abandonment_rate) == (
        30,
        0.8,
        0.9,
        0.10,
    )
    assert s.sla.targets("social", "care", "twitter").frt_seconds == 3600
    assert s.sla.targets("social", "care", "facebook").frt_seconds == 7200
    assert s.sla.targets("social", "care", "mastodon").service_level == 0.9
    assert s.sla.targets("email", "x", "-").frt_seconds == 86_400
    assert (call.fcr_rate, call.escalation_rate, call.csat) == (0.75, 0.15, 0.8)


def test_toml_and_env_precedence(tmp_path):
    path = write(
        tmp_path,
        """
[kafka]
bootstrap = "k1:9092"
[pipeline]
clock = "event"
windows = ["15m", "1h"]
alert_window = "15m"
lateness = "2m"
[sla.call]
frt_seconds = 20
[sla.social.networks.facebook]
frt_seconds = 1800
[sla.queues."call/vip"]
service_level = 0.95
""",
    )
    s = load_settings(path, env={"CC_KAFKA_BOOTSTRAP": "k2:9092"})
    assert s.kafka_bootstrap == "k2:9092" and s.clock == "event"
    assert s.windows_ms == (900_000, 3_600_000) and s.lateness_ms == 120_000
    assert s.sla.targets("call", "billing", "-").frt_seconds == 20
    vip = s.sla.targets("call", "vip", "-")
    assert vip.service_level == 0.95 and vip.frt_seconds == 20
    assert s.sla.targets("social", "q", "facebook").frt_seconds == 1800


def test_config_path_from_environment(tmp_path):
    path = write(tmp_path, "[pipeline]\nmin_contacts = 5\n")
    assert load_settings(env={"CC_CONFIG": str(path)}).min_contacts == 5


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ('[pipeline]\nlateness = "soon"', "pipeline.lateness", "duration"),
        ('[pipeline]\nclock = "sundial"', "pipeline.clock", "'wall' or 'event'"),
        ('[pipeline]\nlatenes = "1m"', "pipeline.latenes", "unknown key"),
        ('[pipline]\nclock = "wall"', "pipline", "unknown section"),
        ("[pipeline]\nmin_contacts = -1", "pipeline.min_contacts", "between"),
        ("[pipeline]\nat_risk_share = 1.5", "pipeline.at_risk_share", "between 0 and 1"),
        ('[pipeline]\nwindows = ["61s"]\nalert_window = "61s"', "pipeline.windows", "buckets"),
        ('[pipeline]\nalert_window = "2h"', "pipeline.alert_window", "not one of"),
        ('[sla.call]\nservice_level = "high"', "sla.call.service_level", "number"),
        ("[sla.call]\nfrt = 30", "sla.call.frt", "unknown SLA target"),
        ("[sla.fax]\nfrt_seconds = 30", "sla.fax", "unknown channel"),
        ("[sla.queues.billing]\nservice_level = 0.9", "sla.queues.billing", "<channel>/<queue>"),
        ('[redis]\nurl = "http://x"', "redis.url", "redis://"),
        ('[topics]\ncalls = "bad topic!"', "topics.calls", "topic name"),
        ("[metrics]\nport = 70000", "metrics.port", "between"),
        ("[pipeline\n", "CC_CONFIG", "not valid TOML"),
    ],
)
def test_bad_values_name_the_key_and_the_problem(tmp_path, text, key, problem):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    assert info.value.key == key
    assert problem in info.value.problem


def test_bad_env_value_names_the_toml_key():
    with pytest.raises(ConfigError) as info:
        load_settings(env={"CC_METRICS_PORT": "ninety"})
    assert info.value.key == "metrics.port"


def test_missing_file_is_a_clear_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", env={})


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("250ms", 250),
        ("5s", 5000),
        ("10m", 600_000),
        ("1.5h", 5_400_000),
        ("7d", 604_800_000),
        (30, 30_000),
    ],
)
def test_durations(text, ms):
    assert parse_duration_ms("k", text) == ms


def test_example_config_is_valid_and_states_the_defaults():
    example = Path(__file__).resolve().parents[1] / "deploy" / "config.example.toml"
    assert load_settings(example, env={}) == load_settings(env={})
