"""The container, Compose, Kubernetes, monitoring and AWS files: linted, schema-checked, and
checked against the image and the app; the image's command run as a plain process (there is
no Docker engine here)."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
import yaml
from asgi_lifespan import LifespanManager
from prometheus_client.parser import text_string_to_metric_families

from service.config import Settings, load_settings
from service.demo import DEMO_ACCOUNT, DemoRepository, seed_registry
from service.web.app import create_app

from ..records import repository, source
from ..support import (
    FakeReader,
    MotoServer,
    command_env,
    start_announcing,
    stop_process,
    wait_for_http,
    wait_until,
)

US = source(repository("team/api"))

ROOT = Path(__file__).parents[2]
BIN = Path(sys.executable).parent


def dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text(encoding="utf-8")


def test_dockerfile_lints_clean() -> None:
    result = subprocess.run(
        [str(BIN / "hadolint"), "--no-color", str(ROOT / "Dockerfile")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_compose_file_is_valid_compose() -> None:
    result = subprocess.run(
        [str(BIN / "check-jsonschema"), "--builtin-schema", "vendor.compose-spec"]
        + [str(ROOT / "docker-compose.yml")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def read_only_root(command: list[str], writable: Path) -> list[str]:
    """``command`` in a mount namespace of its own where only ``writable`` can be written.

    As the Deployment runs the image: a read-only root filesystem and the state volume.
    """
    probe = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "true"], capture_output=True, check=False
    )
    if probe.returncode != 0:
        pytest.skip(f"no mount namespaces here: {probe.stderr.decode().strip()}")
    script = (
        'mount --bind "$1" "$1" && mount -o remount,bind,ro / '
        '&& mount -o remount,bind,ro /dev/shm && shift && exec "$@"'
    )
    return ["unshare", "--mount", "--propagation", "private"] + [
        "sh",
        "-c",
        script,
        "sh",
        str(writable),
        *command,
    ]


def test_the_image_command_serves_with_the_image_environment_on_a_read_only_root(
    moto: MotoServer, tmp_path: Path
) -> None:
    text = dockerfile()
    command = json.loads(re.findall(r"^CMD (\[.*\])$", text, re.MULTILINE)[-1])
    assert command == ["ecr-catalog", "serve"]
    env_block = re.search(r"^ENV ((?:.*\\\n)*.*)$", text.split("FROM")[-1], re.MULTILINE)
    assert env_block is not None
    image_env = dict(re.findall(r"(\w+)=(\S+)", env_block.group(1)))
    assert image_env["ECR_CATALOG_STATE_DIR"] == "/var/lib/ecr-catalog"
    seed_registry(moto.url, [DemoRepository(name="image/check", region="us-east-1")])
    state = tmp_path / "state"
    state.mkdir()
    env = command_env() | image_env
    env |= {
        # Only the host-specific values change: loopback, any free port, and the state volume.
        "ECR_CATALOG_SERVER__HOST": "127.0.0.1",
        "ECR_CATALOG_SERVER__PORT": "0",
        "ECR_CATALOG_STATE_DIR": str(state),
        "AWS_ENDPOINT_URL": moto.url,
        "ECR_CATALOG_AWS__TARGETS": json.dumps(
            [{"regions": ["us-east-1"], "account_id": DEMO_ACCOUNT}]
        ),
    }
    log = tmp_path / "service.log"
    process, port = start_announcing(
        read_only_root([str(BIN / command[0]), *command[1:]], state), log, "the image", env=env
    )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_for_http(f"{url}/healthz", timeout=60, process=process)
        healthcheck = re.search(r'CMD \["python", "-c", "(.*)"\]', text)
        assert healthcheck is not None
        probe = healthcheck.group(1).replace("8080", str(port))
        assert subprocess.run([sys.executable, "-c", probe], check=False).returncode == 0
        wait_until(lambda: httpx.get(f"{url}/readyz").status_code == 200, "the image ready")
        assert "image--check.us-east-1.123456789012" in httpx.get(f"{url}/entities.yaml").text
        wait_until(lambda: list(state.glob("*.json")), "a state file")
    finally:
        stop_process(process)
    # Everything else was read-only: had it tried to write elsewhere, it would have failed.
    assert sorted(p.name for p in state.iterdir()) == [f"{DEMO_ACCOUNT}-us-east-1.json"]
    output = log.read_text(encoding="utf-8")
    assert "Read-only file system" not in output and "Traceback" not in output


KUBERNETES = ROOT / "deploy" / "kubernetes" / "base"
MONITORING = ROOT / "deploy" / "monitoring"


def kustomization() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text())
    return loaded


def manifest(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((KUBERNETES / name).read_text())
    return loaded


def kubernetes_validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "kubernetes-validate"), "--strict", "--quiet", *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_kubernetes_manifests_pass_strict_schema_validation(tmp_path: Path) -> None:
    resources = kustomization()["resources"]
    assert sorted(resources) == sorted(
        p.name for p in KUBERNETES.glob("*.yaml") if p.name != "kustomization.yaml"
    )
    result = kubernetes_validate(*(KUBERNETES / name for name in resources))
    assert result.returncode == 0, result.stdout + result.stderr
    # The check can fail: a misspelt field is caught.
    broken = tmp_path / "deployment.yaml"
    broken.write_text(
        (KUBERNETES / "deployment.yaml").read_text().replace("readinessProbe", "readynessProbe")
    )
    failed = kubernetes_validate(broken)
    assert failed.returncode != 0 and "readynessProbe" in failed.stdout + failed.stderr


def kustomize(folder: Path) -> list[dict[str, Any]]:
    """``kubectl kustomize``: the manifests a folder applies, as kubectl itself builds them."""
    built = subprocess.run(
        ["kubectl", "kustomize", str(folder)], capture_output=True, text=True, check=False
    )
    assert built.returncode == 0, built.stderr
    return [d for d in yaml.safe_load_all(built.stdout) if d]


def validated_build(folder: Path, tmp_path: Path) -> Path:
    """``folder`` built by kubectl, written to a file that strict schema validation passes,
    every namespaced object in ecr-catalog; the file, for checks of its own."""
    documents = kustomize(folder)
    built = tmp_path / "built.yaml"
    built.write_text(yaml.safe_dump_all(documents))
    result = kubernetes_validate(built)
    assert result.returncode == 0, result.stdout + result.stderr
    assert {d["metadata"]["namespace"] for d in documents if d["kind"] != "Namespace"} == {
        "ecr-catalog"
    }
    return built


@pytest.mark.parametrize(
    "folder", [".", "base", "persistent-state", "ingress-events", "partitioned"]
)
def test_every_kustomization_builds_and_passes_strict_schema_validation(
    tmp_path: Path, folder: str
) -> None:
    validated_build(KUBERNETES.parent / folder, tmp_path)


def test_persistent_state_gives_each_replica_its_own_volume_and_keeps_the_pod() -> None:
    (base,) = [d for d in kustomize(KUBERNETES) if d["kind"] == "Deployment"]
    built = kustomize(KUBERNETES.parent / "persistent-state")
    assert not [d for d in built if d["kind"] == "Deployment"]
    (stateful,) = [d for d in built if d["kind"] == "StatefulSet"]
    (claim,) = stateful["spec"]["volumeClaimTemplates"]
    assert claim["metadata"]["name"] == "state"
    assert claim["spec"]["accessModes"] == ["ReadWriteOnce"]
    pod, base_pod = stateful["spec"]["template"]["spec"], base["spec"]["template"]["spec"]
    # The state volume is the claim, no longer an emptyDir; everything else is the base's pod.
    assert "state" not in {v["name"] for v in pod["volumes"]}
    assert [v for v in base_pod["volumes"] if v["name"] != "state"] == pod["volumes"]
    assert {**pod, "volumes": None} == {**base_pod, "volumes": None}
    (container,) = pod["containers"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    image_env = dict(re.findall(r"(\w+)=(\S+)", dockerfile().split("FROM")[-1]))
    assert mounts["state"] == image_env["ECR_CATALOG_STATE_DIR"]
    assert stateful["spec"]["replicas"] == base["spec"]["replicas"]
    assert stateful["spec"]["podManagementPolicy"] == "Parallel"


def test_the_deployment_matches_the_image_and_the_app() -> None:
    deployment = manifest("deployment.yaml")
    assert deployment["spec"]["replicas"] == 2
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    image_env = dict(re.findall(r"(\w+)=(\S+)", dockerfile().split("FROM")[-1]))
    assert container["ports"][0]["containerPort"] == int(image_env["ECR_CATALOG_SERVER__PORT"])
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert pod["securityContext"]["runAsUser"] == int(
        re.findall(r"^USER (\d+)", dockerfile(), re.M)[0]
    )
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["capabilities"]["drop"] == ["ALL"]
    assert security["allowPrivilegeEscalation"] is False
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert image_env["ECR_CATALOG_STATE_DIR"] in mounts
    assert pod["topologySpreadConstraints"]
    config_path = container["args"][container["args"].index("--config") + 1]
    assert Path(config_path).parent.as_posix() in mounts


def test_the_configmap_holds_a_valid_config_file(tmp_path: Path) -> None:
    text = manifest("configmap.yaml")["data"]["ecr-catalog.yaml"]
    (tmp_path / "ecr-catalog.yaml").write_text(text)
    settings = load_settings(tmp_path / "ecr-catalog.yaml", environ={})
    assert settings.log_format == "json"
    assert len(settings.aws.resolved_targets()) == 2


def test_the_network_policy_admits_only_backstage_and_prometheus() -> None:
    policy = manifest("networkpolicy.yaml")
    (ingress,) = policy["spec"]["ingress"]
    namespaces = [
        peer["namespaceSelector"]["matchLabels"]["kubernetes.io/metadata.name"]
        for peer in ingress["from"]
    ]
    assert namespaces == ["backstage", "monitoring"]


def exported_metric_names() -> set[str]:
    """Every sample name the app exposes, from a live /metrics."""

    async def scrape() -> str:
        app = create_app(Settings(), lambda _observer: nullcontext(FakeReader(US)))
        async with LifespanManager(app) as manager:
            transport = httpx.ASGITransport(app=manager.app)
            async with httpx.AsyncClient(transport=transport, base_url="http://svc") as client:
                return (await client.get("/metrics")).text

    names: set[str] = set()
    for family in text_string_to_metric_families(asyncio.run(scrape())):
        names.add(family.name)
        suffixes = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum")}
        names.update(family.name + s for s in suffixes.get(family.type, ()))
    return names


RULE_FILE_SCHEMA = {
    # The rule-file format of Prometheus's documentation, as a PrometheusRule's spec.
    "type": "object",
    "required": ["groups"],
    "additionalProperties": False,
    "properties": {
        "groups": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["name", "rules"],
                "additionalProperties": False,
                "properties": {
                    "name": {"type": "string", "minLength": 1},
                    "interval": {"type": "string"},
                    "rules": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["alert", "expr"],
                            "additionalProperties": False,
                            "properties": {
                                "alert": {"type": "string", "pattern": "^[A-Za-z][A-Za-z0-9]*$"},
                                "expr": {"type": "string", "minLength": 1},
                                "for": {"type": "string", "pattern": "^[0-9]+[smhd]$"},
                                "labels": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                                "annotations": {
                                    "type": "object",
                                    "additionalProperties": {"type": "string"},
                                },
                            },
                        },
                    },
                },
            },
        }
    },
}


def test_alerts_and_dashboard_use_only_exported_metrics() -> None:
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    assert (rule["apiVersion"], rule["kind"]) == ("monitoring.coreos.com/v1", "PrometheusRule")
    jsonschema.validate(rule["spec"], RULE_FILE_SCHEMA)
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"EcrCatalogNoSnapshot", "EcrCatalogSourceStale", "EcrCatalogSourceFailing"} <= alerts
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    expressions = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    expressions += [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    used = {name for e in expressions for name in re.findall(r"\becr_catalog_\w+", e)}
    assert used, "no ecr-catalog metric is used"
    missing = used - exported_metric_names()
    assert not missing, f"not exported: {sorted(missing)}"


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation but - and _ dropped, spaces to -."""
    headings = re.findall(r"^#{1,6} (.+)$", markdown, flags=re.MULTILINE)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in headings}


def test_every_alert_links_its_runbook_section_and_every_runbook_link_lands() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text(encoding="utf-8")
    anchors = _anchors(runbook)
    rule = yaml.safe_load((MONITORING / "prometheusrule.yaml").read_text())
    for alert in (r for g in rule["spec"]["groups"] for r in g["rules"]):
        url = alert["annotations"].get("runbook_url", "")
        assert url.startswith("https://") and "/docs/runbook.md#" in url, alert["alert"]
        assert url.rsplit("#", 1)[1] == alert["alert"].lower(), alert["alert"]
        assert alert["alert"].lower() in anchors, f"docs/runbook.md has no section {alert['alert']}"
    # The runbook's own links between sections land too.
    for target in re.findall(r"\]\(#([^)]+)\)", runbook):
        assert target in anchors, f"docs/runbook.md links #{target}, which is no heading"
    for procedure in (
        "add-or-remove-an-account",
        "rotate-the-event-refresh-and-backstage-tokens",
        "migrate-from-the-committed-file-and-roll-back",
        "recover-from-a-corrupt-or-lost-state_dir",
        "a-source-stuck-stale",
        "a-backstage-location-error",
    ):
        assert procedure in anchors, procedure


def test_aws_snippets_lint_clean() -> None:
    result = subprocess.run(
        [str(BIN / "cfn-lint")]
        + [str(path) for path in sorted((ROOT / "deploy" / "aws").glob("*.yaml"))],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    policies = list((ROOT / "deploy" / "aws").glob("**/*.json"))
    assert len(policies) == 12
    for policy in policies:
        document = json.loads(policy.read_text())
        assert document["Version"] == "2012-10-17"
        assert all(s["Effect"] == "Allow" for s in document["Statement"])


@pytest.mark.parametrize("partition", ["aws", "aws-cn", "aws-us-gov"])
@pytest.mark.parametrize(
    "document", ["permissions", "irsa-trust", "read-role-trust", "organization"]
)
def test_the_committed_iam_documents_are_what_the_command_writes(
    partition: str, document: str
) -> None:
    committed = ROOT / "deploy" / "aws" / "iam" / partition / f"{document}.json"
    result = subprocess.run(
        [str(BIN / "ecr-catalog"), "iam-policy", "--partition", partition, "--document", document],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout == committed.read_text(encoding="utf-8"), "run `make iam`"
    text = json.dumps(json.loads(result.stdout))
    # Every ARN is of the partition's own: none of another's.
    arns = re.findall(r"arn:([a-z-]+):", text)
    assert set(arns) <= {partition} and (arns or document == "organization")
    if partition == "aws-cn":
        assert ".amazonaws.com.cn/" in text or document != "irsa-trust"


def test_an_unknown_partition_is_refused_with_the_known_ones() -> None:
    result = subprocess.run(
        [str(BIN / "ecr-catalog"), "iam-policy", "--partition", "mars"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2 and result.stdout == ""
    assert "unknown partition 'mars'" in result.stderr and "aws-us-gov" in result.stderr


def _json_patch_add(document: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """RFC 6902 "add", as kustomize applies it: enough for the patches we ship."""
    *parents, last = path.lstrip("/").split("/")
    target: Any = document
    for part in parents:
        target = target[int(part)] if isinstance(target, list) else target[part]
    if isinstance(target, list):
        target.append(value) if last == "-" else target.insert(int(last), value)
    else:
        target[last] = value
    return document


def test_the_egress_proxy_and_pod_identity_are_allowed_and_still_valid(tmp_path: Path) -> None:
    policy = manifest("networkpolicy.yaml")
    egress = policy["spec"]["egress"]
    assert {"ipBlock": {"cidr": "169.254.170.23/32"}} in egress[-1]["to"]
    assert egress[-1]["ports"] == [{"port": 80, "protocol": "TCP"}]
    (patch,) = [p for p in kustomization()["patches"] if p["target"]["kind"] == "NetworkPolicy"]
    assert patch["target"] == {"kind": "NetworkPolicy", "name": "ecr-catalog"}
    (operation,) = yaml.safe_load(patch["patch"])
    assert operation["op"] == "add" and operation["path"] == "/spec/egress/-"
    # Set the parameters as an operator would, apply the patch, validate the result.
    rule = operation["value"]
    rule["to"][0]["ipBlock"]["cidr"] = "10.20.30.40/32"
    rule["ports"][0]["port"] = 8080
    patched = _json_patch_add(policy, operation["path"], rule)
    assert patched["spec"]["egress"][-1]["to"] == [{"ipBlock": {"cidr": "10.20.30.40/32"}}]
    path = tmp_path / "networkpolicy.yaml"
    path.write_text(yaml.safe_dump(patched))
    result = kubernetes_validate(path)
    assert result.returncode == 0, result.stdout + result.stderr
