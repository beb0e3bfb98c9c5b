"""The partition section: count, index (or the host name's ordinal) and url_template."""

from __future__ import annotations

import pytest

from service.config import Settings, load_settings
from service.config.partition import ordinal_of, partition_url
from service.errors import ConfigError

TEMPLATE = "http://ecr-catalog-{index}.ecr-catalog-headless.ecr-catalog.svc.cluster.local:8080"


def fleet(**partition: object) -> Settings:
    return load_settings(environ={}, partition=partition)


@pytest.mark.parametrize(
    ("hostname", "ordinal"),
    [
        ("ecr-catalog-2", 2),
        ("ecr-catalog-0", 0),
        ("ecr-catalog-13.ecr-catalog-headless.ns.svc.cluster.local", 13),
        ("ECR-CATALOG-4", 4),
        ("web-1-7", 7),
        ("ecr-catalog", None),
        ("ecr-catalog-", None),
        ("ecr-catalog-01", None),
        ("laptop", None),
        ("-3", None),
        ("ecr-catalog-1234567", None),
    ],
)
def test_the_ordinal_of_a_statefulset_pod(hostname: str, ordinal: int | None) -> None:
    assert ordinal_of(hostname) == ordinal


def test_one_partition_is_the_single_process_whatever_the_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOSTNAME", "laptop")
    assert Settings().partition.count == 1
    assert Settings().partition.own_index == 0


def test_the_index_comes_from_the_host_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTNAME", "ecr-catalog-2")
    assert fleet(count=3, url_template=TEMPLATE).partition.own_index == 2
    # Given, it wins over the host name.
    assert fleet(count=3, index=0, url_template=TEMPLATE).partition.own_index == 0


def test_a_host_name_without_an_ordinal_fails_only_where_the_index_is_needed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HOSTNAME", "laptop")
    settings = fleet(count=3, url_template=TEMPLATE)
    with pytest.raises(ConfigError, match="host name 'laptop' ends in no ordinal"):
        _ = settings.partition.own_index


def test_the_environment_sets_each_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOSTNAME", "laptop")
    monkeypatch.setenv("ECR_CATALOG_PARTITION__COUNT", "4")
    monkeypatch.setenv("ECR_CATALOG_PARTITION__INDEX", "3")
    monkeypatch.setenv("ECR_CATALOG_PARTITION__URL_TEMPLATE", TEMPLATE)
    partition = load_settings().partition
    assert (partition.count, partition.index, partition.url_template) == (4, 3, TEMPLATE)


@pytest.mark.parametrize(
    ("hostname", "partition", "message"),
    [
        ("ecr-catalog-3", {"count": 3}, "gives partition index 3, outside 0..2"),
        ("laptop", {"count": 3, "index": 3}, "partition.index 3 is outside 0..2"),
        ("laptop", {"count": 1, "index": 1}, "partition.index 1 is outside 0..0"),
        ("laptop", {"count": 0, "index": 0}, "partition.count: Input should be greater"),
        ("laptop", {"count": 2000, "index": 0}, "less than or equal to 1024"),
        ("laptop", {"count": 3, "index": -1}, "greater than or equal to 0"),
    ],
)
def test_an_index_outside_the_fleet_is_refused(
    monkeypatch: pytest.MonkeyPatch, hostname: str, partition: dict[str, object], message: str
) -> None:
    monkeypatch.setenv("HOSTNAME", hostname)
    with pytest.raises(ConfigError, match="partition") as refused:
        _ = fleet(**partition, url_template=TEMPLATE).partition.own_index
    assert message in str(refused.value)


@pytest.mark.parametrize(
    ("template", "message"),
    [
        (None, "url_template is required when partition.count is more than 1"),
        ("http://ecr-catalog.svc", "must hold {index}"),
        ("http://ecr-catalog-{index}.{namespace}.svc", "no placeholder but {index}"),
        ("http://ecr-catalog-{index.__class__}.svc", "must hold {index}"),
        ("ftp://ecr-catalog-{index}.svc", "http or https URL with a host"),
        ("http:///{index}", "http or https URL with a host"),
        ("http://ecr-catalog-{index}.svc/?x=1", "no query, fragment or credentials"),
        ("http://user:pw@ecr-catalog-{index}.svc", "no query, fragment or credentials"),
        ("http://ecr-catalog-{index}.svc/" + "a" * 2100, "at most 2048 characters"),
    ],
)
def test_a_url_template_that_cannot_name_each_partition_is_refused(
    template: str | None, message: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        fleet(count=3, index=0, url_template=template)
    assert message in str(refused.value)


def test_each_partition_url_has_its_index_and_no_trailing_slash() -> None:
    assert partition_url("https://p-{index}.example/catalog/", 12) == "https://p-12.example/catalog"
    template = fleet(count=2, index=1, url_template=TEMPLATE).partition.url_template
    assert template == TEMPLATE
