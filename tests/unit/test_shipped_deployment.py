"""The shipped files agree with each other: the Backstage side names the Service that the
Kubernetes side deploys, lets Backstage read every catalog URL the app serves, and the IAM
documents, the ConfigMap and the kustomization's parameters name the same roles and external id.
The files are read directly; no kustomize build is needed for any of this."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from service.config import Settings, load_settings
from service.web.app import create_app

from ..deployment import (
    BACKSTAGE,
    BOTH_WAYS,
    KUBERNETES,
    READING,
    ROOT,
    allows,
    load,
    service_address,
)

IAM = ROOT / "deploy" / "aws" / "iam"
PARTITIONS = ("aws", "aws-cn", "aws-us-gov")


def reading() -> tuple[dict[str, Any], dict[str, Any]]:
    """The reading-only file's one allow entry and one location."""
    config = load(READING)
    (entry,) = config["backend"]["reading"]["allow"]
    (location,) = config["catalog"]["locations"]
    return entry, location


def test_the_location_is_the_service_that_the_kustomization_deploys() -> None:
    host, port = service_address()
    assert (host, port) == ("ecr-catalog.ecr-catalog.svc.cluster.local", 80)
    _, location = reading()
    target = urlsplit(location["target"])
    assert location["type"] == "url"
    assert target.scheme == "http" and target.hostname == host
    assert (target.port or 80) == port
    assert target.path == "/entities.yaml"
    # The Service reaches the pods' port by the name the Deployment gives it.
    service = load(KUBERNETES / "service.yaml")
    (container,) = load(KUBERNETES / "deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    assert (
        service["spec"]["selector"].items()
        <= load(KUBERNETES / "deployment.yaml")["spec"]["template"]["metadata"]["labels"].items()
    )


def catalog_urls(host: str) -> list[str]:
    """Every YAML catalog URL of the app (one URL, and each URL of the many-URL mode), with
    sample values for the path parameters."""
    samples = {"account": "123456789012", "region": "us-east-1", "count": "4", "index": "0"}
    spec = create_app(Settings()).openapi()["paths"]
    routes = [path for path, operations in spec.items() if "get" in operations]
    paths = [
        re.sub(r"\{(\w+)\}", lambda m: samples[m.group(1)], path)
        for path in routes
        if path.endswith(".yaml")
    ]
    assert "/entities.yaml" in paths and "/catalog-info.yaml" in paths
    assert any(p.startswith("/sources/") for p in paths), paths
    return [f"http://{host}{path}" for path in paths]


def test_the_allow_entry_lets_backstage_read_every_catalog_url_and_nothing_else() -> None:
    entry, location = reading()
    host, _ = service_address()
    assert allows(entry, location["target"])
    for url in catalog_urls(host):
        assert allows(entry, url), url
        assert allows(entry, url + "?owner=team-a"), url
    for path in ("/metrics", "/refresh", "/events/ecr", "/", "/readyz", "/entities.json"):
        assert not allows(entry, f"http://{host}{path}"), path
    # The rules themselves, as Backstage applies them: an entry without a port does not match
    # another port; one with the port does; the hostname is compared exactly.
    assert not allows(entry, f"http://{host}:8080/entities.yaml")
    assert allows({**entry, "host": f"{host}:8080"}, f"http://{host}:8080/entities.yaml")
    assert allows({**entry, "host": f"{host}:80"}, f"http://{host}/entities.yaml")
    assert not allows(entry, "http://ecr-catalog/entities.yaml")
    assert not allows({"host": "localhost:1"}, "http://127.0.0.1:1/entities.yaml")
    assert not allows(entry, f"http://{host}/entities.yaml.bak")
    assert allows({"host": "*.svc.cluster.local"}, f"http://{host}/x")


def test_the_reading_file_needs_no_variable_and_allows_what_it_emits() -> None:
    assert "${" not in READING.read_text()
    _, location = reading()
    (rule,) = location["rules"]
    assert sorted(rule["allow"]) == ["Component", "Domain", "Resource", "System"]
    assert load(READING).keys() == {"backend", "catalog"}


def test_the_both_ways_file_holds_the_token_alone() -> None:
    config = load(BOTH_WAYS)
    assert config.keys() == {"backend"} and config["backend"].keys() == {"auth"}
    (access,) = config["backend"]["auth"]["externalAccess"]
    assert access == {
        "type": "static",
        "options": {"token": "${ECR_CATALOG_BACKSTAGE_TOKEN}", "subject": "ecr-catalog"},
        "accessRestrictions": [{"plugin": "catalog"}],
    }
    # The service's side of the same token, from the Secret the Deployment names.
    (container,) = load(KUBERNETES / "deployment.yaml")["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["ECR_CATALOG_BACKSTAGE__TOKEN"]["valueFrom"]["secretKeyRef"]["optional"] is True


def test_the_helm_values_are_the_same_config() -> None:
    values = load(BACKSTAGE / "values.ecr-catalog.yaml")
    assert values == {"backstage": {"appConfig": load(READING)}}
    both = load(BACKSTAGE / "values.ecr-catalog-both-ways.yaml")
    assert both["backstage"]["appConfig"] == load(BOTH_WAYS)
    assert both["backstage"].keys() == {"appConfig", "extraEnvVarsSecrets"}
    # The Secret it names holds the variable the file reads (the comment's command makes it).
    (secret,) = both["backstage"]["extraEnvVarsSecrets"]
    text = (BACKSTAGE / "values.ecr-catalog-both-ways.yaml").read_text()
    assert f"create secret generic {secret}" in text
    assert "--from-literal=ECR_CATALOG_BACKSTAGE_TOKEN=" in text


def test_every_document_names_the_service_as_the_kustomization_deploys_it() -> None:
    """Every URL of the service in the docs is the Service's (http://ecr-catalog..., not a name
    that merely starts so, like ecr-catalog-events.…), and every port-forward reaches its port."""
    host, port = service_address()
    documents = [
        ROOT / "README.md",
        ROOT / "RUNBOOK.md",
        *ROOT.glob("docs/**/*.md"),
        *BACKSTAGE.glob("*.yaml"),
    ]
    for document in documents:
        text = document.read_text()
        where = document.relative_to(ROOT)
        for url in re.findall(r"https?://ecr-catalog(?![\w-])[\w.-]*(?::\d+)?", text):
            assert url == f"http://{host}", f"{where}: {url}"
        for local, remote in re.findall(r"port-forward svc/ecr-catalog (\d+)(?::(\d+))?", text):
            assert int(remote or local) == port, f"{where}: port-forward to {remote or local}"
    # The front page's way to Backstage names the one catalog URL.
    assert f"http://{host}/entities.yaml" in (ROOT / "README.md").read_text()


def configmap_settings(tmp_path: Path) -> Settings:
    configmap = load(KUBERNETES / "configmap.yaml")
    (tmp_path / "ecr-catalog.yaml").write_text(configmap["data"]["ecr-catalog.yaml"])
    return load_settings(tmp_path / "ecr-catalog.yaml", environ={})


def irsa_role_arn() -> str:
    """The IRSA role parameter: the kustomization's one patch of the ServiceAccount."""
    (patch,) = [
        p
        for p in load(KUBERNETES / "kustomization.yaml")["patches"]
        if p["target"]["kind"] == "ServiceAccount"
    ]
    (operation,) = yaml.safe_load(patch["patch"])
    assert operation["path"] == "/metadata/annotations/eks.amazonaws.com~1role-arn"
    value: str = operation["value"]
    return value


@pytest.mark.parametrize("partition", PARTITIONS)
def test_the_read_role_trust_policy_and_the_configmap_agree(tmp_path: Path, partition: str) -> None:
    trust = json.loads((IAM / partition / "read-role-trust.json").read_text())
    (statement,) = trust["Statement"]
    required = statement["Condition"]["StringEquals"]["sts:ExternalId"]
    targets = [t for t in configmap_settings(tmp_path).aws.targets if t.role_arn]
    assert targets, "the ConfigMap shows no assumed role"
    for target in targets:
        # The trust policy refuses an AssumeRole without this exact external id.
        assert target.external_id is not None, target.role_arn
        assert target.external_id.get_secret_value() == required
    # The role assumed is the one the service role may assume, under the name in the policy.
    permissions = json.loads((IAM / partition / "permissions.json").read_text())
    (assume,) = [s for s in permissions["Statement"] if s["Action"] == "sts:AssumeRole"]
    allowed_name = assume["Resource"].rsplit("/", 1)[1]
    assert {t.role_arn.rsplit("/", 1)[1] for t in targets if t.role_arn} == {allowed_name}


def test_the_read_roles_trust_the_irsa_role_of_the_kustomization() -> None:
    trust = json.loads((IAM / "aws" / "read-role-trust.json").read_text())
    (statement,) = trust["Statement"]
    assert statement["Principal"]["AWS"] == irsa_role_arn()
    # And the IRSA role trusts exactly this ServiceAccount, in this namespace.
    irsa = json.loads((IAM / "aws" / "irsa-trust.json").read_text())
    (statement,) = irsa["Statement"]
    subjects = [v for k, v in statement["Condition"]["StringEquals"].items() if k.endswith(":sub")]
    account = load(KUBERNETES / "serviceaccount.yaml")["metadata"]["name"]
    namespace = load(KUBERNETES / "kustomization.yaml")["namespace"]
    assert subjects == [f"system:serviceaccount:{namespace}:{account}"]
    assert (
        load(KUBERNETES / "deployment.yaml")["spec"]["template"]["spec"]["serviceAccountName"]
        == account
    )
