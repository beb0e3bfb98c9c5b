"""The kustomization's parameters (the image, the IRSA role ARN) and the ingress-events overlay,
built with kubectl's own kustomize: each parameter is set in one place, and setting it in an
overlay of one's own, as the docs say, changes what is applied."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import yaml

from service.config import Settings
from service.config.base import ROLE_ARN
from service.web.app import create_app

from ..deployment import KUBERNETES, ROOT, load
from .test_deploy import kubernetes_validate, kustomize

OVERLAY = KUBERNETES.parent / "ingress-events"


def only(documents: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    (document,) = [d for d in documents if d["kind"] == kind]
    return document


def image_of(documents: list[dict[str, Any]]) -> str:
    (container,) = only(documents, "Deployment")["spec"]["template"]["spec"]["containers"]
    image: str = container["image"]
    return image


def role_arns(documents: list[dict[str, Any]]) -> list[str]:
    """Every IRSA annotation in the built output."""
    return [
        value
        for d in documents
        for key, value in d["metadata"].get("annotations", {}).items()
        if key == "eks.amazonaws.com/role-arn"
    ]


def own_overlay(tmp_path: Path, body: dict[str, Any]) -> list[dict[str, Any]]:
    """An overlay of a user's own, elsewhere, on top of the shipped base: built and validated."""
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    document = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1",
        "kind": "Kustomization",
        # Kustomize takes a base by a relative path only.
        "resources": [os.path.relpath(KUBERNETES, overlay)],
        **body,
    }
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(document))
    built = kustomize(overlay)
    (tmp_path / "built.yaml").write_text(yaml.safe_dump_all(built))
    result = kubernetes_validate(tmp_path / "built.yaml")
    assert result.returncode == 0, result.stdout + result.stderr
    return built


def test_the_image_is_one_parameter_that_an_overlay_sets(tmp_path: Path) -> None:
    (parameter,) = load(KUBERNETES / "kustomization.yaml")["images"]
    # The manifest names the image by the parameter's name alone; kustomize fills it in.
    (container,) = load(KUBERNETES / "deployment.yaml")["spec"]["template"]["spec"]["containers"]
    assert container["image"] == parameter["name"] == "ecr-catalog"
    default = f"{parameter['newName']}:{parameter['newTag']}"
    assert image_of(kustomize(KUBERNETES)) == default
    # The default never resolves: a forgotten parameter cannot pull anybody's image.
    assert parameter["newName"].split("/")[0].endswith(".invalid")
    # As the docs say: in an overlay, the base's image by the name the base gives it.
    mine = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/platform/ecr-catalog"
    built = own_overlay(
        tmp_path,
        {"images": [{"name": parameter["newName"], "newName": mine, "newTag": "0.1.0"}]},
    )
    assert image_of(built) == f"{mine}:0.1.0"


def test_the_irsa_role_is_one_parameter_that_an_overlay_sets(tmp_path: Path) -> None:
    # Only the kustomization names it; the ServiceAccount's manifest does not.
    assert "eks.amazonaws.com/role-arn" not in load(KUBERNETES / "serviceaccount.yaml")[
        "metadata"
    ].get("annotations", {})
    (default,) = role_arns(kustomize(KUBERNETES))
    assert ROLE_ARN.fullmatch(default)
    service_account = only(kustomize(KUBERNETES), "ServiceAccount")
    assert service_account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"] == default
    # As the docs say: an overlay's patch of the same annotation.
    mine = "arn:aws:iam::123456789012:role/platform/ecr-catalog"
    patch = [
        {
            "op": "replace",
            "path": "/metadata/annotations/eks.amazonaws.com~1role-arn",
            "value": mine,
        }
    ]
    built = own_overlay(
        tmp_path,
        {
            "patches": [
                {
                    "target": {"kind": "ServiceAccount", "name": "ecr-catalog"},
                    "patch": yaml.safe_dump(patch),
                }
            ]
        },
    )
    assert role_arns(built) == [mine]


def test_the_events_ingress_exposes_the_events_route_alone() -> None:
    base, built = kustomize(KUBERNETES), kustomize(OVERLAY)
    ingress = only(built, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    (path,) = rule["http"]["paths"]
    assert (path["path"], path["pathType"]) == ("/events/ecr", "Exact")
    # The path is the app's events route, which takes POST.
    spec = create_app(Settings()).openapi()["paths"]
    assert set(spec[path["path"]]) == {"post"}
    # Its backend is the Service, by name and port name.
    service = only(base, "Service")
    assert path["backend"]["service"] == {
        "name": service["metadata"]["name"],
        "port": {"name": service["spec"]["ports"][0]["name"]},
    }
    # TLS for the host (EventBridge calls HTTPS only), whose URL the EventBridge template takes.
    (tls,) = ingress["spec"]["tls"]
    assert tls["hosts"] == [rule["host"]] and tls["secretName"]
    template = (ROOT / "deploy" / "aws" / "eventbridge-ecr-events.yaml").read_text()
    pattern = re.search(r'CatalogEventsUrl:.*?AllowedPattern: "([^"]+)"', template, re.S)
    assert pattern, "the template's CatalogEventsUrl has no AllowedPattern"
    assert re.fullmatch(pattern.group(1), f"https://{rule['host']}{path['path']}")


def test_the_events_overlay_admits_the_ingress_controller_and_changes_nothing_else() -> None:
    base, built = kustomize(KUBERNETES), kustomize(OVERLAY)
    policy, base_policy = only(built, "NetworkPolicy"), only(base, "NetworkPolicy")
    *kept, added = policy["spec"]["ingress"]
    assert kept == base_policy["spec"]["ingress"]
    assert added["from"] == [
        {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "ingress-nginx"}}}
    ]
    (container,) = only(base, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert added["ports"] == [{"port": container["ports"][0]["name"], "protocol": "TCP"}]
    assert policy["spec"]["egress"] == base_policy["spec"]["egress"]
    # Everything else is the base's, unchanged.
    rest = [d for d in built if d["kind"] not in ("Ingress", "NetworkPolicy")]
    assert rest == [d for d in base if d["kind"] != "NetworkPolicy"]
