"""The client arguments every Kafka and Redis client is built with (no services needed)."""

from __future__ import annotations

import logging
import ssl

import faust
import pytest
from kafka.errors import KafkaTimeoutError

from streams.config import load_settings, redact_url
from streams.connections import (
    ServiceError,
    faust_credentials,
    kafka_args,
    kafka_errors,
    redis_args,
)
from tests.security.conftest import Pki

SASL = {
    "CC_KAFKA_BOOTSTRAP": "k1:9094",
    "CC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
    "CC_KAFKA_SASL_USERNAME": "pipeline",
    "CC_KAFKA_SASL_PASSWORD": "s3cret-pw",
}


def test_plaintext_clients_get_no_security_arguments() -> None:
    settings = load_settings(env={})
    assert kafka_args(settings) == {
        "bootstrap_servers": "127.0.0.1:9092",
        "security_protocol": "PLAINTEXT",
    }
    assert faust_credentials(settings) is None
    assert set(redis_args(settings.redis_auth, settings.redis_url)) == {
        "socket_timeout",
        "socket_connect_timeout",
    }


def test_sasl_ssl_arguments_for_kafka_python_and_faust(pki: Pki) -> None:
    settings = load_settings(env={**SASL, "CC_KAFKA_SSL_CAFILE": str(pki.ca)})
    args = kafka_args(settings)
    assert args["security_protocol"] == "SASL_SSL" and args["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (args["sasl_plain_username"], args["sasl_plain_password"]) == ("pipeline", "s3cret-pw")
    context = args["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    assert context.get_ca_certs()[0]["subject"] == ((("commonName", "cc-kpi test CA"),),)

    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (
        credentials.protocol.value == "SASL_SSL" and credentials.mechanism.value == "SCRAM-SHA-512"
    )
    assert "s3cret-pw" not in repr(credentials)


def test_ssl_only_gives_faust_ssl_credentials(pki: Pki) -> None:
    settings = load_settings(
        env={"CC_KAFKA_SECURITY_PROTOCOL": "SSL", "CC_KAFKA_SSL_CAFILE": str(pki.ca)}
    )
    assert isinstance(faust_credentials(settings), faust.SSLCredentials)
    assert "sasl_mechanism" not in kafka_args(settings)


def test_redis_acl_user_and_tls(pki: Pki) -> None:
    settings = load_settings(
        env={
            "CC_REDIS_URL": "rediss://r1:6380/0",
            "CC_REDIS_USERNAME": "cc",
            "CC_REDIS_PASSWORD": "r-pw",
            "CC_REDIS_SSL_CAFILE": str(pki.ca),
        }
    )
    args = redis_args(settings.redis_auth, settings.redis_url)
    assert (args["username"], args["password"], args["ssl_ca_certs"]) == ("cc", "r-pw", str(pki.ca))
    # `cc-kpi top --redis redis://...` on a plain port: no TLS argument to choke on.
    assert "ssl_ca_certs" not in redis_args(settings.redis_auth, "redis://r1:6379/0")


def test_urls_in_messages_hide_the_password() -> None:
    assert redact_url("redis://cc:pw@r1:6379/0") == "redis://cc:***@r1:6379/0"
    assert redact_url("redis://r1:6379/0") == "redis://r1:6379/0"


def test_kafka_errors_name_the_telling_cause_without_the_password() -> None:
    settings = load_settings(env=SASL)
    log = logging.getLogger("kafka.net.manager")
    with pytest.raises(ServiceError) as info, kafka_errors(settings):
        log.warning("Bootstrap connection to b-0 failed: socket disconnected (backoff 0.05 secs)")
        log.warning(
            "Bootstrap connection to b-0 failed: SaslAuthenticationFailedError: invalid "
            "credentials for s3cret-pw (backoff 0.10 secs)"
        )
        log.warning("Bootstrap connection to b-0 failed: socket disconnected (backoff 0.20 secs)")
        raise KafkaTimeoutError("Unable to bootstrap from k1:9094")
    assert str(info.value) == (
        "Kafka at k1:9094: SaslAuthenticationFailedError: invalid credentials for ********"
    )


def test_a_bare_disconnect_over_sasl_hints_at_the_credentials() -> None:
    settings = load_settings(env=SASL)
    with (
        pytest.raises(ServiceError, match="probably refused the credentials"),
        kafka_errors(settings),
    ):
        logging.getLogger("kafka.net.manager").warning(
            "Bootstrap connection to b-0 failed: KafkaConnectionError: socket disconnected"
        )
        raise KafkaTimeoutError("Unable to bootstrap from k1:9094")
