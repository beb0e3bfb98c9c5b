"""Refs on entity pages are links: to the entity's page here, and to Backstage when configured."""

from __future__ import annotations

import re

from service.config import Settings
from service.names import EntityRef
from service.web.pages import render_page
from service.web.refs import RefLink, backstage_url, here_url, ref_links

from ...records import ACCOUNT, repository, source
from ...support import FakeReader, in_process

REPOSITORY = f"resource:default/team-a--api.us-east-1.{ACCOUNT}"
PAGE = f"/entities/resource/default/team-a--api.us-east-1.{ACCOUNT}"
BACKSTAGE = "http://127.0.0.1:9/backstage"  # nothing listens: claims reads fail, harmlessly


def test_each_ref_field_with_its_default_kind() -> None:
    entity = {
        "kind": "Resource",
        "metadata": {"name": "x", "namespace": "ops"},
        "spec": {
            "owner": "team-a",
            "system": "container-registry",
            # Not a Resource's field: Backstage relates nothing by it, so it is no link.
            "domain": "delivery",
            "dependsOn": ["resource:db", "Component:other/Thing"],
            "dependencyOf": "no kind here",
        },
    }
    system_entity = {
        "kind": "System",
        "metadata": {"name": "container-registry", "namespace": "ops"},
        "spec": {"owner": "team-a", "domain": "default/delivery"},
    }
    known = {"system:ops/container-registry": object(), "resource:ops/db": object()}
    fields = dict(ref_links(entity, known, "https://backstage.example.com"))
    assert "domain" not in fields
    fields["domain"] = dict(ref_links(system_entity, known, None))["domain"]
    assert fields["owner"] == [
        RefLink(
            "team-a",
            "group:ops/team-a",
            None,  # groups are not this catalog's
            "https://backstage.example.com/catalog/ops/group/team-a",
        )
    ]
    (system,) = fields["system"]
    assert system.here == "/entities/system/ops/container-registry"
    assert fields["domain"][0].ref == "domain:default/delivery"
    assert [link.ref for link in fields["dependsOn"]] == [
        "resource:ops/db",
        "component:other/thing",
    ]
    assert fields["dependsOn"][0].here == "/entities/resource/ops/db"
    # dependencyOf has no default kind: a ref without one, or a malformed one, stays text.
    assert fields["dependencyOf"] == [RefLink("no kind here", None, None, None)]
    # Without base_url, no Backstage links.
    assert all(
        link.backstage is None for _, links in ref_links(entity, known, None) for link in links
    )


def test_urls_quote_every_part() -> None:
    ref = EntityRef("resource", "default", "a.b_c-d")
    assert here_url(ref) == "/entities/resource/default/a.b_c-d"
    assert (
        backstage_url("https://b.example", ref)
        == "https://b.example/catalog/default/resource/a.b_c-d"
    )


async def test_the_entity_page_links_its_refs_here_and_to_backstage() -> None:
    settings = Settings(
        refresh={"interval_seconds": 3600, "initial_retry_seconds": 0.05},
        backstage={"base_url": BACKSTAGE, "refresh_on_change": False},
    )
    reader = FakeReader(source(repository("team-a/api", tags={"owner": "team-a"})))
    async with in_process(settings, reader) as (client, _):
        page = (await client.get(PAGE, headers={"Accept": "text/html"})).text
        system_page = await client.get("/entities/system/default/container-registry")
    owner = re.search(r'<td id="fact-owner">(.*?)</td>', page)
    assert owner is not None
    # The owner group is not served here: only its Backstage page is linked.
    assert owner.group(1) == (
        'group:default/team-a <a class="backstage" '
        f'href="{BACKSTAGE}/catalog/default/group/team-a" '
        'title="group:default/team-a in Backstage">(in Backstage)</a>'
    )
    system = re.search(r'<td id="fact-system">(.*?)</td>', page)
    assert system is not None
    assert '<a href="/entities/system/default/container-registry">' in system.group(1)
    assert f'href="{BACKSTAGE}/catalog/default/system/container-registry"' in system.group(1)
    # Each link here leads to a page that exists.
    assert system_page.status_code == 200
    registry = f"resource:default/ecr-{ACCOUNT}-us-east-1"
    depends = re.search(r'<td id="fact-dependson">(.*?)</td>', page)
    assert depends is not None
    assert f'<a href="/entities/resource/default/ecr-{ACCOUNT}-us-east-1">{registry}</a>' in (
        depends.group(1)
    )
    assert f'href="{BACKSTAGE}/catalog/default/resource/' in page  # the entity's own "In Backstage"
    assert REPOSITORY in page


async def test_without_backstage_refs_link_here_only() -> None:
    settings = Settings(refresh={"interval_seconds": 3600, "initial_retry_seconds": 0.05})
    reader = FakeReader(source(repository("team-a/api", tags={"owner": "team-a"})))
    async with in_process(settings, reader) as (client, _):
        page = (await client.get(PAGE, headers={"Accept": "text/html"})).text
    assert '<td id="fact-owner">group:default/team-a</td>' in page
    assert "/catalog/" not in page and "(in Backstage)" not in page
    assert '<a href="/entities/system/default/container-registry">' in page


def test_what_a_ref_holds_is_escaped() -> None:
    hostile = '"><script>alert(1)</script>'
    entity = {
        "kind": "Resource",
        "metadata": {"name": "x", "description": "d", "labels": {}, "annotations": {}},
        "spec": {"type": "t", "owner": hostile, "system": "sys"},
    }
    page = render_page(
        "entity.html",
        etag=None,
        built_at=None,
        ref="resource:default/x",
        title="x",
        entity=entity,
        posture=None,
        links=[],
        refs=ref_links(entity, {}, '"https://b.example/?a=<b>'),
        yaml="",
    ).decode()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert 'href=""https' not in page
    assert 'href="&#34;https://b.example/?a=&lt;b&gt;/catalog/default/system/sys"' in page
