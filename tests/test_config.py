"""Settings: file, environment, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from service.config import ConfigError, Settings, load_settings


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_file_loads(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
aws:
  endpoint_url: null
  targets:
    - regions: [us-east-1, eu-west-1]
      account_id: "123456789012"
      role_arn: null
      external_id: null
catalog:
  owner: platform-team
refresh:
  interval_seconds: 60
""",
    )
    settings = load_settings(path)
    assert settings.aws.targets[0].regions == ["us-east-1", "eu-west-1"]
    assert settings.catalog.system == "container-registry"
    assert settings.refresh.interval_seconds == 60


def test_environment_overrides_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "refresh:\n  interval_seconds: 60\ncatalog:\n  owner: a\n")
    monkeypatch.setenv("ECR_CATALOG_REFRESH__INTERVAL_SECONDS", "30")
    settings = load_settings(path)
    assert settings.refresh.interval_seconds == 30
    assert settings.catalog.owner == "a"


def test_config_file_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, "catalog:\n  domain: shipping\n")
    monkeypatch.setenv("ECR_CATALOG_CONFIG", str(path))
    assert load_settings().catalog.domain == "shipping"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("aws: [unclosed", "not valid YAML"),
        ("- a list", "mapping at the top level"),
    ],
)
def test_unreadable_files_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text))


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "text",
    [
        "aws:\n  targets:\n    - regions: [narnia]\n",
        "aws:\n  targets:\n    - regions: [us-east-1]\n      account_id: '123'\n",
        "aws:\n  targets:\n    - regions: []\n",
        "aws:\n  concurrency: 20\n  max_pool_connections: 10\n",
        "catalog:\n  system: 'not a name'\n",
        "catalog:\n  owner: 'component:x'\n",
        "catalog:\n  annotation_prefix: 'Not.Lower'\n",
        "refresh:\n  interval_secs: 5\n",
        "aws:\n  targets:\n    - regions: [us-east-1]\n      role_arn: 'arn:aws:s3:::bucket'\n",
    ],
)
def test_bad_values_are_refused_at_startup(tmp_path: Path, text: str) -> None:
    with pytest.raises(ValidationError):
        load_settings(write(tmp_path, text))


def test_ambient_target_takes_the_region_from_the_environment() -> None:
    assert Settings().aws.resolved_targets({"AWS_REGION": "eu-west-1"})[0].regions == ["eu-west-1"]
    with pytest.raises(ConfigError, match="no ECR region"):
        Settings().aws.resolved_targets({})


def test_the_readers_part_is_plain_data_with_the_targets_resolved() -> None:
    settings = Settings.model_validate(
        {
            "aws": {
                "targets": [
                    {
                        "regions": ["eu-west-1"],
                        "role_arn": "arn:aws:iam::123456789012:role/reader",
                        "external_id": "s3cret-id",
                    }
                ],
                "concurrency": 4,
                "max_calls_per_second": 7.5,
            },
            "cache": {"tags_ttl_seconds": 99, "jitter": 0.2},
            "log_format": "json",
        }
    )
    part = settings.reader_settings()
    (target,) = part.targets
    assert target.regions == ("eu-west-1",) and target.external_id == "s3cret-id"
    assert target.role_arn == "arn:aws:iam::123456789012:role/reader"
    assert "s3cret-id" not in repr(part)
    assert (part.concurrency, part.max_calls_per_second, part.log_format) == (4, 7.5, "json")
    assert (part.tags_ttl_seconds, part.jitter, part.images_ttl_seconds) == (99, 0.2, 600)
    # No targets: one ambient target in AWS_REGION, as the reader in process would read.
    ambient = Settings().reader_settings({"AWS_REGION": "ap-south-1"}).targets
    assert [(t.regions, t.role_arn) for t in ambient] == [(("ap-south-1",), None)]
    with pytest.raises(ConfigError):
        Settings().reader_settings({})
