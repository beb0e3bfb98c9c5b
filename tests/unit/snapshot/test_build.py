"""The snapshot build, whole: what each body, Location and index field holds. Pure."""

from __future__ import annotations

import gzip
import json
import logging
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest
import yaml

from service.catalog.claims import Claimer, ClaimIndex
from service.catalog.validate import Rejection
from service.config import CatalogSettings, PostureSettings
from service.errors import SnapshotRefused
from service.model import LatestImage, SourceId
from service.reading import SourceListing
from service.snapshot.build import log_rejections
from service.snapshot.status import EntityChanges
from service.snapshot.types import Deferred

from ...catalog_build import build_snapshot
from ...records import ACCOUNT, repository, source

NOW = datetime(2026, 1, 9, 12, 30, tzinfo=UTC)
US = source(
    repository("team-a/api", tags={"owner": "team-a", "team": "payments", "description": "API"}),
    repository("shared/nginx", tags={"owner": "user:jdoe"}),
)
EU = SourceId(ACCOUNT, "eu-west-1")
REFUSED = SourceId("999999999999", "us-east-1")
OPTIONS = CatalogSettings(shard_size=10)


def documents(body: bytes) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(body) if d]


def build(listing: SourceListing, **kwargs: Any) -> Any:
    return build_snapshot(listing, {US.source: US}, {}, OPTIONS, NOW, **kwargs)


def test_the_root_location_lists_the_core_and_every_listed_source() -> None:
    snapshot = build(SourceListing((EU, US.source)))
    assert snapshot.root_location is not None
    assert snapshot.root_location.gzipped is None
    assert documents(snapshot.root_location.body) == [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Location",
            "metadata": {
                "name": "ecr-catalog",
                "description": "Every ECR entity served by ecr-catalog: the catalog itself "
                "and one URL per source.",
            },
            "spec": {
                "type": "url",
                "targets": [
                    "./catalog/core.yaml",
                    f"./sources/{ACCOUNT}/eu-west-1/catalog-info.yaml",
                    f"./sources/{ACCOUNT}/us-east-1/catalog-info.yaml",
                ],
            },
        }
    ]


def test_a_source_with_data_has_its_shards_and_one_without_a_pending_location() -> None:
    snapshot = build(SourceListing((EU, US.source)))
    assert snapshot.listed == (EU, US.source)
    assert list(snapshot.sources) == [US.source]
    view = snapshot.sources[US.source]
    assert view.source == US.source and view.stale_since is None and view.shard_count == 1
    assert documents(view.location.body) == [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Location",
            "metadata": {
                "name": f"ecr-catalog-{ACCOUNT}-us-east-1",
                "description": f"ECR entities of {ACCOUNT}/us-east-1, in 1 shard(s).",
            },
            "spec": {"type": "url", "targets": ["./shards/1/0.yaml"]},
        }
    ]
    assert list(snapshot.pending_locations) == [EU]
    assert documents(snapshot.pending_locations[EU].body) == [
        {
            "apiVersion": "backstage.io/v1alpha1",
            "kind": "Location",
            "metadata": {
                "name": f"ecr-catalog-{ACCOUNT}-eu-west-1",
                "description": f"ECR entities of {ACCOUNT}/eu-west-1, not read yet.",
            },
            "spec": {"type": "url", "targets": ["./shards/1/0.yaml"]},
        }
    ]
    entities = view.entities.get()
    assert entities.gzipped is not None and gzip.decompress(entities.gzipped) == entities.body
    assert [d["metadata"]["name"] for d in documents(entities.body)] == [
        f"ecr-{ACCOUNT}-us-east-1",
        f"shared--nginx.us-east-1.{ACCOUNT}",
        f"team-a--api.us-east-1.{ACCOUNT}",
    ]
    (shard,) = view.shards.get()
    assert shard.body == entities.body and shard.gzipped is not None
    # The Component depends on the registry of every listed source, even one not read yet.
    assert snapshot.core is not None
    component = documents(snapshot.core.body)[2]
    assert component["spec"]["dependsOn"] == [
        f"resource:default/ecr-{ACCOUNT}-eu-west-1",
        f"resource:default/ecr-{ACCOUNT}-us-east-1",
    ]


def test_why_the_single_url_cannot_be_served_is_said_per_source() -> None:
    listing = SourceListing(
        (EU, US.source),
        refused=((REFUSED, "belongs to another account"),),
        unresolved=("cannot tell which account to read with role x in us-east-1: AccessDenied",),
    )
    snapshot = build(listing, errors={EU: "AccessDeniedException: no"})
    assert snapshot.incomplete == (
        "cannot tell which account to read with role x in us-east-1: AccessDenied",
        "999999999999/us-east-1 is refused: belongs to another account",
        f"no data yet for {ACCOUNT}/eu-west-1 (AccessDeniedException: no)",
    )
    assert not snapshot.complete
    # With a target's sources unknown, nothing that lists every source can be served.
    assert snapshot.core is None and snapshot.root_location is None
    without_error = build(SourceListing((EU, US.source)), errors={US.source: "old"})
    assert without_error.incomplete == (f"no data yet for {ACCOUNT}/eu-west-1",)


def test_the_core_holds_the_domain_system_and_component_only() -> None:
    snapshot = build(SourceListing((US.source,)))
    assert snapshot.complete and snapshot.incomplete == ()
    assert snapshot.core is not None and snapshot.core.gzipped is None
    assert [(d["kind"], d["metadata"]["name"]) for d in documents(snapshot.core.body)] == [
        ("Domain", "delivery"),
        ("System", "container-registry"),
        ("Component", "ecr-registry"),
    ]


def test_every_entity_is_indexed_for_the_filters() -> None:
    snapshot = build(SourceListing((US.source,)))
    assert snapshot.built_at == NOW and snapshot.rejections == () and snapshot.repairs == ()
    items = {item.name: item for item in snapshot.entities}
    api = items[f"team-a--api.us-east-1.{ACCOUNT}"]
    assert api.ref == f"resource:default/team-a--api.us-east-1.{ACCOUNT}"
    assert (api.kind, api.type, api.owner) == ("resource", "ecr-repository", "group:default/team-a")
    assert (api.account, api.region) == (ACCOUNT, "us-east-1")
    assert api.search_text == f"team-a--api.us-east-1.{ACCOUNT} team-a/api api"
    nginx = items[f"shared--nginx.us-east-1.{ACCOUNT}"]
    assert nginx.owner == "user:default/jdoe"
    domain = items["delivery"]
    assert (domain.kind, domain.type, domain.account, domain.region) == ("domain", None, None, None)
    assert domain.owner == "group:default/platform-team"
    assert domain.search_text == "delivery  software delivery: build, publish, deploy."
    assert snapshot.by_ref == {item.ref: item for item in snapshot.entities}
    for item in snapshot.entities:
        assert yaml.safe_load(bytes(item.yaml_document)) == json.loads(item.json_document)


def test_posture_and_claim_conflicts_reach_the_index_and_the_snapshot() -> None:
    unsure = replace(
        repository("team-c/unsure"),
        scan_on_push=None,
        tag_mutability=None,
    )
    claims = ClaimIndex.of(
        [
            Claimer("component:default/alpha", "group:default/team-a", ("team-c/unsure",)),
            Claimer("component:default/beta", "group:default/team-b", ("team-c/unsure",)),
            Claimer("component:default/gamma", "group:default/team-g", ("shared/nginx",)),
        ]
    )
    records = source(unsure, repository("shared/nginx"))
    snapshot = build_snapshot(
        SourceListing((US.source,)),
        {US.source: records},
        {},
        OPTIONS,
        NOW,
        claims=claims,
        posture=PostureSettings(stale_pull_days=None),
    )
    item = snapshot.by_ref[f"resource:default/team-c--unsure.us-east-1.{ACCOUNT}"]
    assert item.posture == "fail" and item.posture_unknown == ("scanning", "tag-immutability")
    assert snapshot.claimed == 2
    assert snapshot.claim_conflicts == (
        f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/team-c/unsure: claimed by "
        "component:default/alpha (group:default/team-a), "
        "component:default/beta (group:default/team-b); "
        f"owners disagree, so owner {OPTIONS.owner} (catalog.owner)",
    )


@pytest.mark.usefixtures("machine_in_tokyo")
def test_posture_days_are_utc_days_whatever_the_machines_zone() -> None:
    """At 20:00 UTC on 9 January it is 10 January in Tokyo; replicas must agree all day."""
    pushed = repository(
        "r",
        latest=LatestImage(
            digest="sha256:" + "ab" * 32,
            tags=("v1",),
            pushed_at=datetime(2026, 1, 8, 12, tzinfo=UTC),
            size_bytes=1,
            finding_counts=(),
            findings="available",
        ),
    )
    built_at = datetime(2026, 1, 9, 20, tzinfo=UTC)
    assert built_at.astimezone().date().day == 10  # the fixture took
    snapshot = build_snapshot(
        SourceListing((US.source,)),
        {US.source: source(pushed)},
        {},
        OPTIONS,
        built_at,
        posture=PostureSettings(stale_pull_days=None, stale_push_days=1),
    )
    item = snapshot.by_ref[f"resource:default/r.us-east-1.{ACCOUNT}"]
    # Pushed on the 8th: not older than one day on the 9th (it would be on the 10th).
    assert "stale" not in item.posture_failures


def test_the_json_body_is_every_document_and_gzipped() -> None:
    snapshot = build(SourceListing((US.source,)))
    body = snapshot.json.get()
    assert body.gzipped is not None and gzip.decompress(body.gzipped) == body.body
    items = json.loads(body.body)["items"]
    assert items == [json.loads(item.json_document) for item in snapshot.entities]
    assert snapshot.yaml.gzipped is not None
    assert documents(snapshot.yaml.body) == items


def test_an_entity_in_another_namespace_is_indexed_with_its_own_refs() -> None:
    options = CatalogSettings(namespace="ops", owner="team-x")
    snapshot = build_snapshot(SourceListing((US.source,)), {US.source: US}, {}, options, NOW)
    items = {item.name: item for item in snapshot.entities}
    assert items["delivery"].ref == "domain:ops/delivery"
    assert items["delivery"].owner == "group:ops/team-x"


def test_an_invalid_repository_is_left_out_and_counted_and_a_structural_one_refuses() -> None:
    bad_owner = repository("team-b/api", tags={"owner": "not a ref!"})
    records = source(*US.repositories, bad_owner)
    snapshot = build_snapshot(SourceListing((US.source,)), {US.source: records}, {}, OPTIONS, NOW)
    assert len(snapshot.repairs) == 1 and snapshot.rejections == ()
    assert snapshot.repairs[0].startswith(
        "arn:aws:ecr:us-east-1:123456789012:repository/team-b/api: owner tag"
    )
    options = CatalogSettings.model_construct(**{**OPTIONS.model_dump(), "owner": "a/b/c"})
    with pytest.raises(SnapshotRefused) as refused:
        build_snapshot(SourceListing((US.source,)), {US.source: US}, {}, options, NOW)
    assert str(refused.value) == "; ".join(
        f"{ref}: spec.owner ref 'a/b/c' is invalid"
        for ref in (
            "Domain:delivery",
            "System:container-registry",
            "Component:ecr-registry",
            f"Resource:ecr-{ACCOUNT}-us-east-1",
        )
    )
    # The registry is the one entity of a source among them.
    assert refused.value.sources == (US.source,)


def test_with_every_rejection_refused_an_invalid_repository_refuses_naming_its_source() -> None:
    """Records saved by an earlier run served whole then: one that is refused now is blamed."""
    twice = source(repository("x/api"), repository("x/api"))
    listing = SourceListing((US.source, EU))
    eu = source(repository("y"), region="eu-west-1")
    with pytest.raises(SnapshotRefused) as refused:
        build_snapshot(
            listing, {US.source: twice, EU: eu}, {}, OPTIONS, NOW, refuse_any_rejection=True
        )
    assert refused.value.sources == (US.source,)
    ref = f"resource:default/x--api.us-east-1.{ACCOUNT}"
    problem = (
        f"{ref} would be emitted by 2: {ARN_X_API}, {ARN_X_API}; "
        "none is served, so that none takes over another"
    )
    assert str(refused.value) == f"{ref}: {problem}; {ref}: {problem}"


def test_a_refusal_lists_every_problem_of_each_entity() -> None:
    options = CatalogSettings.model_construct(
        **{**OPTIONS.model_dump(), "owner": "a/b/c", "component_lifecycle": ""}
    )
    with pytest.raises(SnapshotRefused) as refused:
        build_snapshot(SourceListing((US.source,)), {US.source: US}, {}, options, NOW)
    assert (
        "; Component:ecr-registry: spec.lifecycle is required for a Component, "
        "spec.owner ref 'a/b/c' is invalid; "
    ) in str(refused.value)


ARN_X_API = f"arn:aws:ecr:us-east-1:{ACCOUNT}:repository/x/api"


def test_a_name_taken_twice_serves_neither_and_withholds_the_source() -> None:
    # ECR never lists a repository twice; names collide only so, or on 64 bits of SHA-256.
    # Whichever one were served would own the other's ref: issue 23's takeover.
    twice = source(repository("x/api"), repository("x/api"), repository("other"))
    eu = source(repository("y"), region="eu-west-1")
    snapshot = build_snapshot(
        SourceListing((US.source, EU)), {US.source: twice, EU: eu}, {}, OPTIONS, NOW
    )
    ref = f"resource:default/x--api.us-east-1.{ACCOUNT}"
    assert [(r.ref, r.origin) for r in snapshot.rejections] == [(ref, ARN_X_API)] * 2
    assert "none is served" in snapshot.rejections[0].problems[0]
    assert ref not in snapshot.by_ref
    # Its source is withheld: listed as incomplete, with no URL of its own, not even a
    # pending Location (which would orphan its shards); the other source is served.
    (reason,) = snapshot.incomplete
    assert reason == snapshot.withheld[US.source] and ref in reason
    assert US.source not in snapshot.sources and US.source not in snapshot.pending_locations
    assert set(snapshot.sources) == {EU}
    again = build_snapshot(
        SourceListing((US.source, EU)),
        {US.source: source(repository("x/api")), EU: eu},
        {},
        OPTIONS,
        NOW,
    )
    assert again.complete and ref in again.by_ref and not again.withheld


def test_a_stale_source_says_since_when() -> None:
    since = datetime(2026, 1, 8, tzinfo=UTC)
    snapshot = build_snapshot(
        SourceListing((US.source,)), {US.source: US}, {US.source: since}, OPTIONS, NOW
    )
    assert snapshot.sources[US.source].stale_since == since
    assert snapshot.stale_sources == {US.source: since}


def test_changes_between_snapshots_count_refs_added_removed_and_changed() -> None:
    first = build(SourceListing((US.source,)))
    assert EntityChanges.between(first, first) == EntityChanges()
    assert EntityChanges.between(None, first) == EntityChanges(
        added=len(first.entities), sources=frozenset({US.source}), core=True, first=True
    )
    changed = source(
        repository("team-a/api", tags={"owner": "team-b"}),
        repository("new/one"),
        repository("new/two"),
    )
    second = build_snapshot(SourceListing((US.source,)), {US.source: changed}, {}, OPTIONS, NOW)
    # Only repositories of one source changed: only its Location needs reading again.
    assert EntityChanges.between(first, second) == EntityChanges(
        added=2, removed=1, changed=1, sources=frozenset({US.source}), core=False
    )


def test_a_deferred_value_is_computed_once_and_then_kept() -> None:
    calls: list[int] = []
    deferred = Deferred(lambda: calls.append(1) or "value")
    assert deferred.peek() is None
    assert deferred.get() == "value" and deferred.get() == "value"
    assert deferred.peek() == "value" and calls == [1]


async def test_a_deferred_value_is_awaited_once_and_then_kept() -> None:
    calls: list[int] = []
    deferred = Deferred(lambda: calls.append(1) or "value")
    assert await deferred.aget() == "value"
    assert await deferred.aget() == "value"
    assert calls == [1]


def test_rejections_are_logged_one_line_each(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING):
        log_rejections([Rejection("resource:default/x", "arn:aws:ecr:x", ("a", "b"))])
    assert caplog.messages == [
        "entity left out of the catalog: resource:default/x from arn:aws:ecr:x: a; b"
    ]
