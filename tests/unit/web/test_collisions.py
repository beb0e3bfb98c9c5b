"""Entity names that collide change no owner: neither entity is served, both are reported, and
every URL that lists their source answers 503 (issue 23)."""

from __future__ import annotations

from ...records import ACCOUNT, repository, source
from ...support import FakeReader
from .test_routes import serving

# ECR never lists a repository twice, and names are injective (catalog.naming): records that
# name one repository twice are the one way left to make two entities with one ref.
VICTIM = repository("victim/api", tags={"owner": "team-victim"})
TAKER = repository("victim/api", tags={"owner": "group:default/attackers"})
US = source(VICTIM, TAKER, repository("bystander"))
EU = source(repository("shared/nginx", region="eu-west-1"), region="eu-west-1")
REF = f"resource:default/victim--api.us-east-1.{ACCOUNT}"


async def test_a_collision_serves_neither_entity_and_withholds_its_source() -> None:
    async with serving(FakeReader(US, EU)) as client:
        readiness = (await client.get("/readyz")).json()
        assert readiness["complete"] is False
        (reason,) = readiness["incomplete"]
        assert REF in reason and f"{ACCOUNT}/us-east-1" in reason
        rejected = readiness["snapshot"]["rejected"]
        assert [(r["ref"], r["origin"]) for r in rejected] == [(REF, VICTIM.arn)] * 2
        # Nothing that lists the source answers 200 without them (Backstage would delete).
        for path in (
            "/entities.yaml",
            "/entities.json",
            f"/sources/{ACCOUNT}/us-east-1/catalog-info.yaml",
            f"/sources/{ACCOUNT}/us-east-1/entities.yaml",
            f"/sources/{ACCOUNT}/us-east-1/shards/1/0.yaml",
        ):
            response = await client.get(path)
            assert response.status_code == 503, path
            assert REF in response.json()["detail"], path
        # The other source and the root are served as before.
        assert (await client.get(f"/sources/{ACCOUNT}/eu-west-1/entities.yaml")).status_code == 200
        assert (await client.get("/catalog-info.yaml")).status_code == 200
        page = (await client.get("/")).text
        assert page.count(REF) >= 3 and VICTIM.arn in page
        # The entity page of the ref shows no one's entity under it.
        entity_page = await client.get(
            f"/entities/resource/default/victim--api.us-east-1.{ACCOUNT}"
        )
        assert entity_page.status_code == 404


async def test_a_configured_name_that_takes_another_repositorys_name_withholds_the_source() -> None:
    """catalog.names cannot hand one repository the ref another one is served under."""
    bystander = repository("bystander")
    taken = f"bystander.us-east-1.{ACCOUNT}"
    names = {VICTIM.arn: taken}
    async with serving(
        FakeReader(source(VICTIM, bystander), EU), catalog={"names": names}
    ) as client:
        readiness = (await client.get("/readyz")).json()
        (reason,) = readiness["incomplete"]
        assert f"resource:default/{taken}" in reason and "catalog.names gives" in reason
        rejected = readiness["snapshot"]["rejected"]
        assert sorted(r["origin"] for r in rejected) == sorted([VICTIM.arn, bystander.arn])
        response = await client.get("/entities.yaml")
        assert response.status_code == 503 and taken in response.json()["detail"]
        assert (await client.get(f"/sources/{ACCOUNT}/eu-west-1/entities.yaml")).status_code == 200
        page = (await client.get("/")).text
        assert taken in page and bystander.arn in page
