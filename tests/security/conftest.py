"""A Kafka broker with a SASL_SSL (SCRAM-SHA-512) listener and a Redis with an ACL
user and TLS, both with certificates from a CA generated for the session.

They run on their own ports and state dir (not those of `make test`'s plain
services), so these tests also run beside the rest of the suite. The broker
keeps a PLAINTEXT listener for itself and its readiness probe; the tests
connect only through SASL_SSL.
"""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.integration.conftest import run_local_script

ROOT = Path(__file__).resolve().parents[2]
LOCAL_DIR = Path(os.environ.get("CC_TEST_SECURITY_DIR", ROOT / ".local" / "security"))
KAFKA_PORT = int(os.environ.get("CC_TEST_SECURITY_KAFKA_PORT", "29092"))
KAFKA_CONTROLLER_PORT = KAFKA_PORT + 1
KAFKA_SASL_SSL_PORT = KAFKA_PORT + 2
REDIS_PORT = int(os.environ.get("CC_TEST_SECURITY_REDIS_PORT", "26379"))
REDIS_TLS_PORT = REDIS_PORT + 1


@dataclass(frozen=True)
class Pki:
    ca: Path
    cert: Path
    key: Path
    keystore: Path  # PKCS12 of cert + key, for the broker
    keystore_password: str


@dataclass(frozen=True)
class SecureServices:
    kafka_bootstrap: str  # the SASL_SSL listener
    kafka_user: str
    kafka_password: str
    redis_url: str  # rediss://, the TLS port
    redis_plain_url: str  # the plain port (still needs the ACL user)
    redis_user: str
    redis_password: str
    ca: Path

    def env(self) -> dict[str, str]:
        """Everything a cc-kpi process needs to connect, credentials included, as
        environment variables (the only place the passwords are given)."""
        return {
            "CC_KAFKA_BOOTSTRAP": self.kafka_bootstrap,
            "CC_KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
            "CC_KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
            "CC_KAFKA_SASL_USERNAME": self.kafka_user,
            "CC_KAFKA_SASL_PASSWORD": self.kafka_password,
            "CC_KAFKA_SSL_CAFILE": str(self.ca),
            "CC_REDIS_URL": self.redis_url,
            "CC_REDIS_USERNAME": self.redis_user,
            "CC_REDIS_PASSWORD": self.redis_password,
            "CC_REDIS_SSL_CAFILE": str(self.ca),
        }


def _openssl(*args: str, cwd: Path) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"openssl {args[0]} failed:\n{result.stderr}", pytrace=False)


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    """A throw-away CA and a server certificate for 127.0.0.1 and localhost."""
    d = tmp_path_factory.mktemp("pki")
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
        "-days", "2", "-subj", "/CN=cc-kpi test CA", cwd=d,
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
        "-subj", "/CN=localhost", cwd=d,
    )  # fmt: skip
    (d / "ext.cnf").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
        "keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n"
    )
    _openssl(
        "x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
        "-CAcreateserial", "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=d,
    )  # fmt: skip
    password = secrets.token_hex(12)
    _openssl(
        "pkcs12", "-export", "-in", "server.crt", "-inkey", "server.key", "-out", "server.p12",
        "-passout", f"pass:{password}", cwd=d,
    )  # fmt: skip
    return Pki(d / "ca.crt", d / "server.crt", d / "server.key", d / "server.p12", password)


def _script(name: str, command: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return run_local_script(name, command, env={"CC_LOCAL_DIR": str(LOCAL_DIR), **env})


@pytest.fixture(scope="session")
def secure_services(pki: Pki) -> Iterator[SecureServices]:
    """Started fresh (reset first: SCRAM users are created when the storage is
    formatted) and stopped and purged at the end. Random passwords per session."""
    services = SecureServices(
        kafka_bootstrap=f"127.0.0.1:{KAFKA_SASL_SSL_PORT}",
        kafka_user="cc-pipeline",
        kafka_password="kp-" + secrets.token_urlsafe(18),
        redis_url=f"rediss://127.0.0.1:{REDIS_TLS_PORT}/0",
        redis_plain_url=f"redis://127.0.0.1:{REDIS_PORT}/0",
        redis_user="cc-pipeline",
        redis_password="rp-" + secrets.token_urlsafe(18),
        ca=pki.ca,
    )
    kafka_env = {
        "CC_KAFKA_PORT": str(KAFKA_PORT),
        "CC_KAFKA_CONTROLLER_PORT": str(KAFKA_CONTROLLER_PORT),
        "CC_KAFKA_SASL_SSL_PORT": str(KAFKA_SASL_SSL_PORT),
        "CC_KAFKA_SSL_KEYSTORE": str(pki.keystore),
        "CC_KAFKA_SSL_KEYSTORE_PASSWORD": pki.keystore_password,
        "CC_KAFKA_SCRAM_USERS": f"{services.kafka_user}={services.kafka_password}",
    }
    redis_env = {
        "CC_REDIS_PORT": str(REDIS_PORT),
        "CC_REDIS_ACL_USER": services.redis_user,
        "CC_REDIS_ACL_PASSWORD": services.redis_password,
        "CC_REDIS_TLS_PORT": str(REDIS_TLS_PORT),
        "CC_REDIS_TLS_CERT": str(pki.cert),
        "CC_REDIS_TLS_KEY": str(pki.key),
    }
    started: list[tuple[str, dict[str, str]]] = []
    try:
        for name, env in (("kafka.sh", kafka_env), ("redis.sh", redis_env)):
            _script(name, "reset", env)
            result = _script(name, "start", env)
            if result.returncode != 0:
                pytest.fail(
                    f"{name} start failed (exit {result.returncode}):\n"
                    f"{result.stdout}{result.stderr}",
                    pytrace=False,
                )
            started.append((name, env))
        yield services
    finally:
        for name, env in reversed(started):
            _script(name, "reset", env)
