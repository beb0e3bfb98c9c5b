"""The region rule (service/config/regions.py) against the installed botocore's own regions."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.aws.partitions import known_regions
from service.config import Settings, load_settings
from service.config.regions import check_regions
from service.errors import ConfigError

KNOWN = known_regions()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(aws: dict[str, object], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as refused:
        check_regions(Settings(aws=aws).aws, KNOWN, "config.yaml", environ or {})
    return str(refused.value)


def test_botocore_knows_every_partitions_regions_and_no_pseudo_region() -> None:
    for region in ("us-east-1", "eu-central-1", "cn-north-1", "us-gov-west-1", "us-isob-east-1"):
        assert region in KNOWN.names
    # In the partitions' own list before ECR's endpoint data names it.
    assert "eusc-de-east-1" in KNOWN.names
    assert not any(name.endswith("-global") for name in KNOWN.names)
    assert KNOWN.source.startswith("botocore ")


def test_a_misspelt_region_is_refused_naming_its_key_and_the_close_matches() -> None:
    message = refusal({"targets": [{"regions": ["us-east-1", "eu-centrall-1"]}]})
    line = next(line for line in message.splitlines() if "eu-centrall-1" in line)
    assert line.strip().startswith("config.yaml: aws.targets.0.regions: 'eu-centrall-1'")
    assert "Did you mean eu-central-1" in line
    assert f"not a region {KNOWN.source} knows" in line
    assert "aws.extra_regions" in line
    # The known region on the same list is not named.
    assert "'us-east-1'" not in message


def test_every_unknown_region_of_every_target_and_the_organisation_is_named() -> None:
    message = refusal(
        {
            "targets": [{"regions": ["us-east-1"]}, {"regions": ["us-wset-2"]}],
            "organization": {"regions": ["ap-southeast-22"]},
        }
    )
    assert "aws.targets.1.regions: 'us-wset-2'" in message
    assert "Did you mean us-west-2" in message
    assert "aws.organization.regions: 'ap-southeast-22'" in message


def test_a_region_nothing_resembles_gets_no_guess() -> None:
    message = refusal({"targets": [{"regions": ["zz-nowhere-9"]}]})
    assert "Did you mean" not in message and "'zz-nowhere-9'" in message


def test_the_ambient_region_from_the_environment_is_checked_too() -> None:
    message = refusal({}, {"AWS_REGION": "eu-wset-1"})
    assert "environment: AWS_REGION: 'eu-wset-1'" in message
    assert "Did you mean eu-west-1" in message
    check_regions(Settings().aws, KNOWN, environ={"AWS_DEFAULT_REGION": "eu-west-1"})


def test_enabled_regions_and_known_regions_pass() -> None:
    aws = Settings(
        aws={
            "targets": [{"regions": ["us-east-1", "cn-north-1", "eusc-de-east-1"]}],
            "organization": {"regions": ["enabled"]},
        }
    ).aws
    check_regions(aws, KNOWN, environ={})


@pytest.mark.parametrize(
    ("aws", "environ"),
    [
        ({"endpoint_url": "http://127.0.0.1:5000"}, {}),
        ({"endpoint_urls": {"ecr": "https://vpce-1.ecr.example.internal"}}, {}),
        ({}, {"AWS_ENDPOINT_URL_ECR": "https://vpce-1.ecr.example.internal"}),
        ({}, {"AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}),
    ],
)
def test_an_ecr_endpoint_of_ones_own_makes_any_region_deliberate(
    aws: dict[str, object], environ: dict[str, str]
) -> None:
    settings = Settings(aws={**aws, "targets": [{"regions": ["xx-test-1"]}]})
    check_regions(settings.aws, KNOWN, environ=environ)


def test_an_sts_endpoint_alone_does_not_reach_ecr() -> None:
    message = refusal(
        {
            "endpoint_urls": {"sts": "https://sts.example.internal"},
            "targets": [{"regions": ["eu-centrall-1"]}],
        }
    )
    assert "'eu-centrall-1'" in message


def test_a_region_newer_than_botocore_goes_in_extra_regions(tmp_path: Path) -> None:
    text = "aws:\n  targets:\n    - regions: [us-east-1, eu-newplace-1]\n"
    with pytest.raises(ConfigError, match="'eu-newplace-1' is not a region"):
        load_settings(write(tmp_path, text), environ={}, known_regions=KNOWN)
    path = write(tmp_path, text + "  extra_regions: [eu-newplace-1]\n")
    settings = load_settings(path, environ={}, known_regions=KNOWN)
    assert settings.aws.extra_regions == ["eu-newplace-1"]
    assert settings.aws.targets[0].regions == ["us-east-1", "eu-newplace-1"]


def test_extra_regions_must_look_like_regions(tmp_path: Path) -> None:
    path = write(tmp_path, "aws:\n  extra_regions: [narnia]\n")
    with pytest.raises(ConfigError, match="aws.extra_regions: 'narnia' is not an AWS region"):
        load_settings(path, environ={})


def test_load_settings_names_the_file(tmp_path: Path) -> None:
    path = write(tmp_path, "aws:\n  targets:\n    - regions: [eu-centrall-1]\n")
    with pytest.raises(ConfigError, match=f"{path}: aws.targets.0.regions: 'eu-centrall-1'"):
        load_settings(path, environ={}, known_regions=KNOWN)
    # Without the known regions (a test's Settings, the demo), nothing is checked.
    assert load_settings(path, environ={}).aws.targets[0].regions == ["eu-centrall-1"]


def test_a_malformed_ambient_region_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'eu west 1' is not an AWS region name"):
        Settings().aws.resolved_targets({"AWS_REGION": "eu west 1"})
