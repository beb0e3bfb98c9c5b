"""The README and the docs site say what the code and the shipped files do.

`make docs` builds the site with `mkdocs build --strict` (broken links, anchors and pages fail
it); these tests hold the facts the build cannot check: config keys, the Service's address,
the README's size and links, and the service's own catalog file.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from service.catalog.validate import entity_problems
from service.config import REMOVED_KEYS
from service.config.reference import settings_keys
from service.names import parse_entity_ref

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
KUBERNETES = ROOT / "deploy" / "kubernetes" / "base"
SECTIONS = ("aws", "catalog", "cache", "refresh", "server", "events", "backstage", "posture")
# Dotted names in the docs that share a section's name but are no settings of ours: Backstage's
# own app-config keys, fields of /readyz, and a function the benchmarks' history names.
NOT_SETTINGS = {
    "catalog.locations",
    "catalog.rules",
    "backstage.claims.conflicts",
    "backstage.claims.last_error",
    "backstage.refresh.last_error",
    "backstage.refresh.last_outcome",
    "catalog.plan_catalog",
}


def pages() -> dict[str, str]:
    found = {
        str(path.relative_to(ROOT)): path.read_text(encoding="utf-8") for path in DOCS.glob("*.md")
    }
    found["README.md"] = (ROOT / "README.md").read_text(encoding="utf-8")
    return found


def test_the_site_has_its_pages() -> None:
    assert {"index.md", "getting-started.md", "configuration.md", "kubernetes.md", "iam.md"} <= {
        path.name for path in DOCS.glob("*.md")
    }
    assert len(pages()) > 15


def test_the_readme_is_a_front_page() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 250
    assert "make run" in readme and "make test" in readme


def test_every_link_of_the_readme_lands_on_a_file() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#]+)(?:#[^)]*)?\)", readme)
    local = [target for target in targets if "://" not in target]
    assert len(local) > 20
    missing = [target for target in local if not (ROOT / target).is_file()]
    assert not missing, missing


def is_setting(path: str) -> bool:
    keys = {key.path: key for key in settings_keys()}
    parent = path.rsplit(".", 1)[0]
    # A key of a mapping setting (aws.endpoint_urls.ecr), or a key the errors say was removed.
    return (
        path in keys
        or (parent in keys and keys[parent].type.startswith("mapping"))
        or tuple(path.split(".")) in REMOVED_KEYS
    )


def test_every_config_key_the_docs_name_exists() -> None:
    # A dotted name in code quotes, starting with a section, ending the quote or followed by a
    # space, "=" or ":" (so `backstage.io/owner` and `posture.py` are not keys).
    sections = "|".join(SECTIONS)
    pattern = re.compile(rf"`((?:{sections})\.[a-z_]+(?:(?:\[\])?\.[a-z_]+)*)(?=[`\s=:])(?<!\.py)")
    named = {
        (where, match.group(1))
        for where, text in pages().items()
        for match in pattern.finditer(text)
        if match.group(1) not in NOT_SETTINGS
    }
    assert len(named) > 50
    unknown = sorted((where, key) for where, key in named if not is_setting(key))
    assert not unknown, f"keys the docs name that Settings does not have: {unknown}"


def test_every_cluster_address_in_the_docs_is_the_shipped_service() -> None:
    service = yaml.safe_load((KUBERNETES / "service.yaml").read_text(encoding="utf-8"))
    namespace = yaml.safe_load((KUBERNETES / "kustomization.yaml").read_text(encoding="utf-8"))[
        "namespace"
    ]
    port = service["spec"]["ports"][0]["port"]
    host = f"{service['metadata']['name']}.{namespace}.svc.cluster.local"
    # Every cluster address of this Service (Backstage's own, backstage.backstage..., is not).
    written = [
        (where, found)
        for where, text in pages().items()
        for found in re.findall(r"[a-z0-9.-]+\.svc\.cluster\.local(?::[0-9]+)?", text)
        if found.split(".")[0] == service["metadata"]["name"]
    ]
    assert written
    # Port 80 is written without a port, as Backstage's reading.allow entry must match it.
    expected = host if port == 80 else f"{host}:{port}"
    wrong = [(where, found) for where, found in written if found != expected]
    assert not wrong, f"the Service is {expected}: {wrong}"


def test_the_service_describes_itself_for_backstage() -> None:
    documents = list(yaml.safe_load_all((ROOT / "catalog-info.yaml").read_text(encoding="utf-8")))
    for document in documents:
        assert entity_problems(document) == [], document["metadata"]["name"]
    component, api = documents
    assert component["kind"] == "Component"
    ref = component["metadata"]["annotations"]["backstage.io/techdocs-ref"]
    assert ref == "dir:."
    assert (ROOT / ref.removeprefix("dir:") / "mkdocs.yml").is_file()
    # Backstage's API kind needs these, besides what every entity needs.
    assert api["kind"] == "API"
    assert all(api["spec"].get(field) for field in ("type", "lifecycle", "owner", "definition"))
    assert (ROOT / api["spec"]["definition"]["$text"]).is_file()
    provided = [
        parse_entity_ref(item, default_kind="api", default_namespace="default")
        for item in component["spec"]["providesApis"]
    ]
    assert [(r.kind, r.name) for r in provided if r is not None] == [
        ("api", api["metadata"]["name"])
    ]


def test_the_runbook_stays_where_the_alerts_point() -> None:
    # The alerts link docs/runbook.md; RUNBOOK.md at the root only points there.
    assert "docs/runbook.md" in (ROOT / "RUNBOOK.md").read_text(encoding="utf-8")
    rule = (ROOT / "deploy" / "monitoring" / "prometheusrule.yaml").read_text(encoding="utf-8")
    assert "RUNBOOK.md" not in rule and "/docs/runbook.md#" in rule
