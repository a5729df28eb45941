"""deploy/k8s: the workers' manifests, validated without a cluster.

Core kinds are validated by kubernetes-validate against the Kubernetes API's
JSON schemas it ships (strict: unknown fields are errors). The ServiceMonitor
(a Prometheus Operator CRD, not in those schemas) is checked field by field
against the subset of its API the manifest uses. Then names, labels, ports and
the TOML configuration are cross-checked.
"""

from __future__ import annotations

import re
import tomllib
from typing import Any

import pytest

from tests.deploy.conftest import K8S, ROOT, load_yaml, require_module, yaml_module

KUBERNETES_VERSION = "1.33"
FILES = sorted(p for p in K8S.glob("*.yaml") if p.name != "kustomization.yaml")
# The keys the ConfigMap may set differently from deploy/config.example.toml.
CLUSTER_KEYS = {
    ("kafka", "bootstrap"),
    ("redis", "url"),
    ("pipeline", "data_dir"),
    ("metrics", "addr"),
}


def resources() -> dict[str, dict[str, Any]]:
    found = {}
    for path in FILES:
        for document in yaml_module().safe_load_all(path.read_text()):
            found[document["kind"]] = document
    return found


def worker() -> dict[str, Any]:
    return resources()["Deployment"]["spec"]["template"]["spec"]["containers"][0]


def config_toml() -> dict[str, Any]:
    return tomllib.loads(resources()["ConfigMap"]["data"]["config.toml"])


def test_kustomization_lists_every_manifest() -> None:
    kustomization = load_yaml(K8S / "kustomization.yaml")
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(p.name for p in FILES)
    assert kustomization["namespace"] == resources()["Namespace"]["metadata"]["name"]


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_core_resources_match_the_kubernetes_schemas(path: Any) -> None:
    validator = require_module("kubernetes_validate", "kubernetes-validate")
    for document in yaml_module().safe_load_all(path.read_text()):
        if document["apiVersion"].startswith("monitoring.coreos.com/"):
            continue
        validator.validate(document, KUBERNETES_VERSION, strict=True)


def test_schema_validation_rejects_an_unknown_field() -> None:
    validator = require_module("kubernetes_validate", "kubernetes-validate")
    deployment = resources()["Deployment"]
    deployment["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {}
    with pytest.raises(validator.ValidationError):
        validator.validate(deployment, KUBERNETES_VERSION, strict=True)


SERVICE_MONITOR_FIELDS = {
    "": {"apiVersion", "kind", "metadata", "spec"},
    "spec": {"selector", "endpoints", "namespaceSelector", "jobLabel", "targetLabels"},
    "endpoint": {"port", "path", "interval", "scrapeTimeout", "scheme", "honorLabels"},
}
PROMETHEUS_DURATION = re.compile(r"^((\d+)y)?((\d+)w)?((\d+)d)?((\d+)h)?((\d+)m)?((\d+)s)?$")


def test_service_monitor_selects_the_worker_service() -> None:
    monitor = resources()["ServiceMonitor"]
    service = resources()["Service"]
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    assert set(monitor) <= SERVICE_MONITOR_FIELDS[""]
    assert set(monitor["spec"]) <= SERVICE_MONITOR_FIELDS["spec"]
    assert (
        monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    )
    port_names = {port["name"] for port in service["spec"]["ports"]}
    for endpoint in monitor["spec"]["endpoints"]:
        assert set(endpoint) <= SERVICE_MONITOR_FIELDS["endpoint"]
        assert endpoint["port"] in port_names
        assert endpoint["path"] == "/metrics"
        for key in ("interval", "scrapeTimeout"):
            assert PROMETHEUS_DURATION.match(endpoint[key]), endpoint[key]


def test_selectors_and_labels_agree() -> None:
    r = resources()
    pod_labels = r["Deployment"]["spec"]["template"]["metadata"]["labels"]
    assert r["Deployment"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert r["Service"]["spec"]["selector"].items() <= pod_labels.items()
    assert r["PodDisruptionBudget"]["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    assert r["Service"]["spec"]["clusterIP"] == "None", "one endpoint per worker"


def test_metrics_port_agrees_everywhere() -> None:
    container = worker()
    (port,) = container["ports"]
    assert port["name"] == "metrics"
    assert port["containerPort"] == config_toml()["metrics"]["port"]
    annotations = resources()["Deployment"]["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == str(port["containerPort"])
    assert annotations["prometheus.io/path"] == "/metrics"
    (service_port,) = resources()["Service"]["spec"]["ports"]
    assert service_port["targetPort"] == "metrics"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"] == {"path": "/metrics", "port": "metrics"}, probe
    assert config_toml()["metrics"]["addr"] == "0.0.0.0", "the kubelet probes from outside"


def test_workers_have_replicas_resources_and_a_clean_stop() -> None:
    deployment = resources()["Deployment"]
    assert deployment["spec"]["replicas"] >= 2
    container = worker()
    assert container["args"] == ["worker"]
    requests = container["resources"]["requests"]
    assert requests["cpu"] and requests["memory"]
    assert container["resources"]["limits"]["memory"]
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] >= 30
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert config_toml()["pipeline"]["data_dir"].startswith(tuple(mounts - {"/etc/cc-kpi"}))


def test_config_map_is_the_example_with_cluster_addresses() -> None:
    example = tomllib.loads((ROOT / "deploy" / "config.example.toml").read_text())
    ours = config_toml()
    differing = set()
    for section in example.keys() | ours.keys():
        left, right = example.get(section, {}), ours.get(section, {})
        for key in left.keys() | right.keys():
            if left.get(key) != right.get(key):
                differing.add((section, key))
    assert differing <= CLUSTER_KEYS, (
        f"update deploy/k8s/configmap.yaml: {differing - CLUSTER_KEYS}"
    )


def test_config_map_is_accepted_by_the_pipeline(tmp_path: Any) -> None:
    from streams import config

    path = tmp_path / "config.toml"
    path.write_text(resources()["ConfigMap"]["data"]["config.toml"])
    env = {e["name"]: e["value"] for e in worker()["env"] if "value" in e}
    assert set(env) <= set(config._ENV) | {"CC_CONFIG"}
    mount = next(m for m in worker()["volumeMounts"] if m["name"] == "config")
    assert env["CC_CONFIG"] == f"{mount['mountPath']}/config.toml"
    settings = config.load_settings(path, env={k: v for k, v in env.items() if k != "CC_CONFIG"})
    assert settings.kafka_bootstrap == "kafka:9092"
    assert settings.metrics_port == worker()["ports"][0]["containerPort"]


def test_image_tag_is_the_package_version() -> None:
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert worker()["image"] == f"cc-kpi:{version}"
    images = load_yaml(K8S / "kustomization.yaml")["images"]
    assert images == [{"name": "cc-kpi", "newTag": version}]
