"""Client arguments for Kafka and Redis, built from Settings in one place.

Every client the project creates (the Faust app, kafka-python admin/producer/
consumer, sync and asyncio Redis) takes its TLS, SASL and ACL settings from
here, so they all connect the same way, and this is the only module that reads
a password out of its `Secret`.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from streams.config import KafkaSecurity, RedisAuth, Settings

if TYPE_CHECKING:
    import redis
    import redis.asyncio
    from faust.types.auth import CredentialsT

REDIS_TIMEOUT_S = 5
"""Socket and connect timeout of every Redis client: a dead Redis must not stall a snapshot."""


class ServiceError(RuntimeError):
    """Kafka or Redis refused us or could not be reached; one line, without secrets."""


def kafka_ssl_context(security: KafkaSecurity) -> ssl.SSLContext | None:
    """Certificate and host name checked against the CA file (or the system's CAs)."""
    if not security.tls:
        return None
    context = ssl.create_default_context(cafile=security.cafile)
    if security.certfile is not None:
        context.load_cert_chain(security.certfile, security.keyfile)
    return context


def kafka_args(settings: Settings) -> dict[str, Any]:
    """Keyword arguments of kafka-python's KafkaAdminClient, KafkaProducer and KafkaConsumer."""
    security = settings.kafka_security
    args: dict[str, Any] = {
        "bootstrap_servers": settings.kafka_bootstrap,
        "security_protocol": security.protocol,
    }
    if security.tls:
        args["ssl_context"] = kafka_ssl_context(security)
    if security.sasl and security.password is not None:
        args["sasl_mechanism"] = security.sasl_mechanism
        args["sasl_plain_username"] = security.username
        args["sasl_plain_password"] = security.password.reveal()
    return args


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """`broker_credentials` of faust.App: aiokafka takes SASL and TLS from it."""
    import faust  # here: the CLI builds kafka-python arguments without importing Faust

    security = settings.kafka_security
    context = kafka_ssl_context(security)
    if security.sasl and security.password is not None:
        return faust.SASLCredentials(
            username=security.username,
            password=security.password.reveal(),
            ssl_context=context,
            mechanism=security.sasl_mechanism,
        )
    if context is not None:
        return faust.SSLCredentials(context)
    return None


def redis_args(auth: RedisAuth, url: str) -> dict[str, Any]:
    """Keyword arguments for `from_url` (sync or asyncio); a user or password in the
    URL itself wins over these."""
    args: dict[str, Any] = {
        "socket_timeout": REDIS_TIMEOUT_S,
        "socket_connect_timeout": REDIS_TIMEOUT_S,
    }
    if auth.username is not None:
        args["username"] = auth.username
    if auth.password is not None:
        args["password"] = auth.password.reveal()
    if auth.cafile is not None and url.startswith("rediss://"):
        args["ssl_ca_certs"] = auth.cafile
    return args


def redis_client(settings: Settings, url: str | None = None) -> redis.Redis:
    """A synchronous client of `url` (default: redis.url) with the configured credentials."""
    import redis

    url = url or settings.redis_url
    return redis.Redis.from_url(url, **redis_args(settings.redis_auth, url))


def async_redis_client(settings: Settings) -> redis.asyncio.Redis:
    """The asyncio client the pipeline writes its snapshots with."""
    import redis.asyncio

    url = settings.redis_url
    return redis.asyncio.Redis.from_url(url, **redis_args(settings.redis_auth, url))


def scrub(text: str, settings: Settings) -> str:
    """`text` with every configured password masked: a client library's error
    message is shown to people and must not echo a credential back."""
    for secret in (settings.kafka_security.password, settings.redis_auth.password):
        if secret is not None:
            text = text.replace(secret.reveal(), "********")
    return text


_TELLING = ("AUTHENTICATION", "SSL", "CERTIFICATE")
"""Words of a cause worth more than a bare disconnect: a broker may drop a connection
before the client reads why it failed, so a later attempt often says more."""


class _FailureCause(logging.Handler):
    """Keeps why kafka-python's bootstrap failed, which it gives up on with a bare
    timeout: the first authentication or TLS failure, else the first failure."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.cause: str | None = None
        self.telling = False

    def emit(self, record: logging.LogRecord) -> None:
        message = record.getMessage()
        if self.telling or not record.name.startswith("kafka.net") or "failed: " not in message:
            return
        cause = message.split("failed: ", 1)[1].split(" (backoff", 1)[0]
        telling = any(word in cause.upper() for word in _TELLING)
        if self.cause is None or telling:
            self.cause, self.telling = cause, telling


@contextmanager
def kafka_errors(settings: Settings, bootstrap: str | None = None) -> Iterator[None]:
    """Turns kafka-python's errors (unreachable broker, failed authentication, TLS
    handshake) into one ServiceError line naming the bootstrap servers and the cause."""
    from kafka.errors import KafkaError

    failures = _FailureCause()
    logger = logging.getLogger("kafka")
    logger.addHandler(failures)
    try:
        yield
    except KafkaError as error:
        problem = failures.cause or f"{type(error).__name__}: {error}"
        if settings.kafka_security.sasl and problem.endswith("socket disconnected"):
            # A broker that refuses SCRAM credentials sometimes closes the
            # connection before the client has read the refusal.
            problem += (
                " (it probably refused the credentials: check kafka.sasl_username,"
                " the password and kafka.sasl_mechanism)"
            )
        where = bootstrap or settings.kafka_bootstrap
        raise ServiceError(f"Kafka at {where}: {scrub(problem, settings)}") from None
    finally:
        logger.removeHandler(failures)
