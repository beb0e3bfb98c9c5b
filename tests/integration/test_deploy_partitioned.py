"""deploy/kubernetes/partitioned: the fleet as a StatefulSet, built by kubectl and validated as
the other overlays are, and held against the settings it configures and the Backstage side."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from service.config import load_settings
from service.config.partition import ordinal_of, partition_url

from .test_deploy import KUBERNETES, kubernetes_validate, kustomize, validated_build

OVERLAY = KUBERNETES.parent / "partitioned"


def built() -> dict[str, list[dict[str, Any]]]:
    by_kind: dict[str, list[dict[str, Any]]] = {}
    for document in kustomize(OVERLAY):
        by_kind.setdefault(document["kind"], []).append(document)
    return by_kind


def env_of(stateful: dict[str, Any]) -> dict[str, str]:
    (container,) = stateful["spec"]["template"]["spec"]["containers"]
    return {e["name"]: e["value"] for e in container["env"] if "value" in e}


def service_host(service: dict[str, Any]) -> str:
    return f"{service['metadata']['name']}.{service['metadata']['namespace']}.svc.cluster.local"


def test_the_validation_of_its_build_can_fail(tmp_path: Path) -> None:
    # Built and validated with the other kustomizations (test_deploy.py); a misspelt field of
    # its own is caught.
    path = validated_build(OVERLAY, tmp_path)
    path.write_text(path.read_text().replace("publishNotReadyAddresses", "publishNotReady"))
    assert kubernetes_validate(path).returncode != 0


def test_a_statefulset_of_partitions_each_with_its_volume_and_the_count_of_its_replicas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    kinds = built()
    assert "Deployment" not in kinds
    (stateful,) = kinds["StatefulSet"]
    spec = stateful["spec"]
    assert spec["podManagementPolicy"] == "Parallel"
    (claim,) = spec["volumeClaimTemplates"]
    (container,) = spec["template"]["spec"]["containers"]
    assert {m["name"]: m["mountPath"] for m in container["volumeMounts"]}[
        claim["metadata"]["name"]
    ] == "/var/lib/ecr-catalog"
    env = env_of(stateful)
    replicas = spec["replicas"]
    assert replicas > 1 and int(env["ECR_CATALOG_PARTITION__COUNT"]) == replicas
    # Each pod's settings, as it loads them: the index from its name, the ConfigMap's file.
    (config_map,) = kinds["ConfigMap"]
    config = tmp_path / "ecr-catalog.yaml"
    config.write_text(config_map["data"]["ecr-catalog.yaml"])
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    for index in range(replicas):
        pod = f"{stateful['metadata']['name']}-{index}"
        monkeypatch.setenv("HOSTNAME", pod)
        assert ordinal_of(pod) == index
        partition = load_settings(config).partition
        assert (partition.own_index, partition.count) == (index, replicas)


def test_the_urls_name_the_pods_and_the_service_that_exist() -> None:
    kinds = built()
    (stateful,) = kinds["StatefulSet"]
    env = env_of(stateful)
    services = {s["metadata"]["name"]: s for s in kinds["Service"]}
    headless = services[stateful["spec"]["serviceName"]]
    assert headless["spec"]["clusterIP"] == "None"
    assert headless["spec"]["publishNotReadyAddresses"] is True
    (port,) = headless["spec"]["ports"]
    for index in range(stateful["spec"]["replicas"]):
        url = urlsplit(partition_url(env["ECR_CATALOG_PARTITION__URL_TEMPLATE"], index))
        pod = f"{stateful['metadata']['name']}-{index}"
        assert url.hostname == f"{pod}.{service_host(headless)}"
        # The pod's own address: the container's port, whatever the Service maps.
        assert url.port == 8080 == port["port"]
    fleet = urlsplit(env["ECR_CATALOG_PARTITION__FLEET_URL"])
    (front,) = [s for s in services.values() if s["spec"].get("clusterIP") != "None"]
    assert fleet.hostname == service_host(front)
    assert (fleet.port or 80) == front["spec"]["ports"][0]["port"]
    # The Service and the headless Service both select every pod of the set.
    labels = stateful["spec"]["template"]["metadata"]["labels"]
    for service in services.values():
        assert service["spec"]["selector"].items() <= labels.items()


def test_backstages_side_reads_the_root_and_may_read_every_partition() -> None:
    kinds = built()
    (stateful,) = kinds["StatefulSet"]
    env = env_of(stateful)
    side = yaml.safe_load((OVERLAY / "app-config.backstage.yaml").read_text())
    (location,) = side["catalog"]["locations"]
    target = urlsplit(location["target"])
    assert f"{target.scheme}://{target.netloc}" == env["ECR_CATALOG_PARTITION__FLEET_URL"]
    assert target.path == "/catalog-info.yaml"
    allowed = [entry["host"] for entry in side["backend"]["reading"]["allow"]]
    # As Backstage's FetchUrlReader matches them: host exactly or "*." suffix, port included.
    for url in [location["target"]] + [
        partition_url(env["ECR_CATALOG_PARTITION__URL_TEMPLATE"], i)
        for i in range(stateful["spec"]["replicas"])
    ]:
        parts = urlsplit(url)
        assert any(allows(entry, parts.hostname or "", parts.port) for entry in allowed), url
    assert {"Resource", "Location"} <= set(side["catalog"]["rules"][0]["allow"])


def allows(entry: str, hostname: str, port: int | None) -> bool:
    host, _, wanted_port = entry.partition(":")
    if (str(port) if port else "") != wanted_port:
        return False
    return hostname.endswith(host[1:]) if host.startswith("*.") else hostname == host


def test_the_network_policy_admits_backstage_to_every_pod_and_no_pod_to_another() -> None:
    (policy,) = built()["NetworkPolicy"]
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "ecr-catalog"}
    peers = [peer for rule in policy["spec"]["ingress"] for peer in rule["from"]]
    # Backstage follows the redirects itself: partitions never call one another.
    assert all("namespaceSelector" in peer for peer in peers)
    assert {
        p["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"] for p in peers
    } == {"backstage", "monitoring"}
    (budget,) = built()["PodDisruptionBudget"]
    assert budget["spec"] == {
        "maxUnavailable": 1,
        "selector": {"matchLabels": {"app.kubernetes.io/name": "ecr-catalog"}},
    }
