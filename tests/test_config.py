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


def test_the_internal_backlog_limit_from_toml_and_env(tmp_path):
    assert load_settings(env={}).max_internal_backlog == 200_000
    path = write(tmp_path, "[pipeline]\nmax_internal_backlog = 50000\n")
    assert load_settings(path, env={}).max_internal_backlog == 50_000
    env = {"CC_MAX_INTERNAL_BACKLOG": "70000"}
    assert load_settings(path, env=env).max_internal_backlog == 70_000


def test_the_input_skew_bound_from_toml_and_env(tmp_path):
    assert load_settings(env={}).max_input_skew_ms == 600_000
    path = write(tmp_path, '[pipeline]\nmax_input_skew = "1h"\n')
    assert load_settings(path, env={}).max_input_skew_ms == 3_600_000
    assert load_settings(path, env={"CC_MAX_INPUT_SKEW": "90s"}).max_input_skew_ms == 90_000


def test_the_stop_timeout_from_toml_and_env(tmp_path):
    assert load_settings(env={}).stop_timeout_ms == 25_000
    path = write(tmp_path, '[pipeline]\nstop_timeout = "50s"\n')
    assert load_settings(path, env={}).stop_timeout_ms == 50_000
    assert load_settings(path, env={"CC_STOP_TIMEOUT": "10s"}).stop_timeout_ms == 10_000


def test_the_allocator_from_toml_and_env(tmp_path):
    assert load_settings(env={}).allocator == "jemalloc"
    path = write(tmp_path, '[pipeline]\nallocator = "pymalloc"\n')
    assert load_settings(path, env={}).allocator == "pymalloc"
    assert load_settings(path, env={"CC_ALLOCATOR": "jemalloc"}).allocator == "jemalloc"


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
        ("[pipeline]\nmax_internal_backlog = 10", "pipeline.max_internal_backlog", "between"),
        ('[pipeline]\nmax_input_skew = "0s"', "pipeline.max_input_skew", "positive"),
        ('[pipeline]\nstop_timeout = "never"', "pipeline.stop_timeout", "duration"),
        ('[pipeline]\nallocator = "tcmalloc"', "pipeline.allocator", "'jemalloc' or 'pymalloc'"),
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


def test_label_caps_from_toml_and_env(tmp_path):
    path = write(
        tmp_path,
        """
[labels]
queues = ["billing", "support"]
max_queues = 10
networks = ["mastodon"]
max_networks = 3
other = "~rest"
""",
    )
    labels = load_settings(path, env={"CC_LABELS_MAX_NETWORKS": "7"}).labels
    assert labels.queues == {"billing", "support"} and labels.networks == {"mastodon"}
    assert (labels.max_queues, labels.max_networks, labels.other) == (10, 7, "~rest")
    defaults = load_settings(env={}).labels
    assert (defaults.max_queues, defaults.max_networks, defaults.other) == (50, 20, "other")
    assert load_settings(env={"CC_LABELS_MAX_QUEUES": "0"}).labels.max_queues == 0


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        ("[labels]\nmax_queues = -1", "labels.max_queues", "between 0 and 10000"),
        ('[labels]\nmax_networks = "many"', "labels.max_networks", "integer"),
        ('[labels]\nqueues = "billing"', "labels.queues", "list of names"),
        ('[labels]\nqueues = [""]', "labels.queues", "1 to 64 characters"),
        ('[labels]\nnetworks = ["*"]', "labels.networks", "reserved"),
        ('[labels]\nother = "unknown"', "labels.other", "reserved"),
        ('[labels]\nother = "a|b"', "labels.other", "without '|'"),
        ('[labels]\nqueues = ["other"]', "labels.other", "pick another"),
        ('[labels]\nother = "vip"\n[sla.queues."call/vip"]\ncsat = 0.9', "labels.other", "[sla]"),
        ('[labels]\nother = "twitter"', "labels.other", "pick another"),
        ("[labels]\nmax_labels = 5", "labels.max_labels", "unknown key"),
    ],
)
def test_bad_label_caps_name_the_key(tmp_path, text, key, problem):
    with pytest.raises(ConfigError) as info:
        load_settings(write(tmp_path, text), env={})
    assert info.value.key == key
    assert problem in info.value.problem


# --- security: Kafka SASL/TLS, Redis ACL/TLS, secrets only from the environment ---

EXISTING = str(Path(__file__))  # a file that exists and is no certificate or key
SASL_ENV = {
    "CC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "CC_KAFKA_SASL_USERNAME": "pipeline",
    "CC_KAFKA_SASL_PASSWORD": "kafka-Secret-1",
}


@pytest.fixture(scope="module")
def ca_pem(tmp_path_factory):
    """A self-signed CA certificate (PEM), made with the openssl CLI."""
    import subprocess

    d = tmp_path_factory.mktemp("ca")
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(d / "ca.key"),
         "-out", str(d / "ca.crt"), "-days", "1", "-subj", "/CN=test CA"],
        check=True, capture_output=True,
    )  # fmt: skip
    return d / "ca.crt"


def test_security_defaults_are_plaintext_without_credentials():
    s = load_settings(env={})
    assert s.kafka_security.protocol == "PLAINTEXT" and s.kafka_security.password is None
    assert s.redis_auth.username is None and s.redis_auth.password is None


def test_sasl_ssl_from_the_environment(ca_pem):
    s = load_settings(env={**SASL_ENV, "CC_KAFKA_SSL_CAFILE": str(ca_pem)})
    security = s.kafka_security
    assert (security.protocol, security.sasl_mechanism, security.username) == (
        "SASL_SSL",
        "SCRAM-SHA-512",
        "pipeline",
    )
    assert security.password is not None and security.password.reveal() == "kafka-Secret-1"
    assert security.sasl and security.tls and security.cafile == str(ca_pem)


def test_secrets_never_show_in_repr_or_str():
    env = {**SASL_ENV, "CC_REDIS_USERNAME": "cc", "CC_REDIS_PASSWORD": "redis-Secret-2"}
    s = load_settings(env=env)
    for text in (repr(s), str(s), repr(s.kafka_security), f"{s.redis_auth.password}"):
        assert "kafka-Secret-1" not in text and "redis-Secret-2" not in text
    assert "********" in repr(s.kafka_security)


@pytest.mark.parametrize(
    ("env", "key"),
    [
        (
            {"CC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CC_KAFKA_SASL_PASSWORD": "pw-x"},
            "kafka.sasl_username",
        ),
        (
            {"CC_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "CC_KAFKA_SASL_USERNAME": "u"},
            "CC_KAFKA_SASL_PASSWORD",
        ),
        ({"CC_KAFKA_SASL_PASSWORD": "pw-x"}, "CC_KAFKA_SASL_PASSWORD"),
        ({"CC_KAFKA_SASL_USERNAME": "u"}, "kafka.sasl_username"),
        ({"CC_KAFKA_SECURITY_PROTOCOL": "TLS"}, "kafka.security_protocol"),
        ({**SASL_ENV, "CC_KAFKA_SASL_MECHANISM": "GSSAPI"}, "kafka.sasl_mechanism"),
        ({"CC_KAFKA_SSL_CAFILE": EXISTING}, "kafka.ssl_cafile"),
        ({**SASL_ENV, "CC_KAFKA_SSL_CAFILE": "/nonexistent/ca.pem"}, "kafka.ssl_cafile"),
        (
            {"CC_KAFKA_SECURITY_PROTOCOL": "SSL", "CC_KAFKA_SSL_KEYFILE": EXISTING},
            "kafka.ssl_keyfile",
        ),
        ({"CC_REDIS_USERNAME": "cc"}, "CC_REDIS_PASSWORD"),
        ({"CC_REDIS_URL": "redis://h:6379/0", "CC_REDIS_SSL_CAFILE": EXISTING}, "redis.ssl_cafile"),
        ({"CC_REDIS_URL": "redis://:pw-x@h:6379/0", "CC_REDIS_PASSWORD": "pw-x"}, "redis.url"),
        (
            {"CC_KAFKA_SASL_PASSWORD": "pw-x", "CC_KAFKA_SASL_PASSWORD_FILE": EXISTING},
            "CC_KAFKA_SASL_PASSWORD_FILE",
        ),
        ({"CC_REDIS_PASSWORD_FILE": "/nonexistent/pw"}, "CC_REDIS_PASSWORD_FILE"),
    ],
)
def test_bad_security_settings_name_the_key_and_hide_the_password(env, key):
    with pytest.raises(ConfigError) as info:
        load_settings(env=env)
    assert info.value.key == key
    assert "pw-x" not in str(info.value)


def test_a_ca_file_that_is_not_pem_is_a_config_error(tmp_path):
    bad = write(tmp_path, "not a certificate")
    with pytest.raises(ConfigError, match="no usable PEM CA") as info:
        load_settings(env={**SASL_ENV, "CC_KAFKA_SSL_CAFILE": str(bad)})
    assert info.value.key == "kafka.ssl_cafile"


def test_passwords_are_refused_in_the_config_file(tmp_path):
    path = write(tmp_path, '[kafka]\nsasl_password = "pw-in-file"\n')
    with pytest.raises(ConfigError, match="CC_KAFKA_SASL_PASSWORD") as info:
        load_settings(path, env={})
    assert info.value.key == "kafka.sasl_password" and "pw-in-file" not in str(info.value)


def test_password_files_for_docker_and_kubernetes_secrets(tmp_path):
    (tmp_path / "kafka").write_text("from-a-file\n")
    (tmp_path / "redis").write_text("redis-file")
    s = load_settings(
        env={
            **SASL_ENV,
            "CC_KAFKA_SASL_PASSWORD": "",
            "CC_KAFKA_SASL_PASSWORD_FILE": str(tmp_path / "kafka"),
            "CC_REDIS_PASSWORD_FILE": str(tmp_path / "redis"),
        }
    )
    assert s.kafka_security.password is not None and s.redis_auth.password is not None
    assert s.kafka_security.password.reveal() == "from-a-file"
    assert s.redis_auth.password.reveal() == "redis-file"


def test_a_password_in_the_redis_url_is_moved_out_of_it(ca_pem):
    s = load_settings(
        env={
            "CC_REDIS_URL": "rediss://cc:p%40ss@redis.example:6380/2",
            "CC_REDIS_SSL_CAFILE": str(ca_pem),
        }
    )
    assert s.redis_url == "rediss://redis.example:6380/2"
    assert s.redis_auth.username == "cc" and s.redis_auth.password is not None
    assert s.redis_auth.password.reveal() == "p@ss" and s.redis_auth.cafile == str(ca_pem)
