"""Settings: file, environment, validation."""

from __future__ import annotations

from pathlib import Path

import pytest

from service.config import Settings, load_settings
from service.errors import ConfigError


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
        ("- a list", "mapping of settings at the top level"),
    ],
)
def test_unreadable_files_are_clear_errors(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_settings(write(tmp_path, text))


def test_a_missing_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    ("text", "key", "problem"),
    [
        (
            "aws:\n  targets:\n    - regions: [narnia]\n",
            "aws.targets.0.regions",
            "'narnia' is not an AWS region name (e.g. us-east-1)",
        ),
        (
            "aws:\n  targets:\n    - regions: [us-east-1]\n      account_id: '123'\n",
            "aws.targets.0.account_id",
            "'123' is not a 12-digit AWS account id",
        ),
        (
            # "\\n" in YAML's double quotes is a newline: Python's "$" matched before it.
            'aws:\n  targets:\n    - regions: [us-east-1]\n      account_id: "123456789012\\n"\n',
            "aws.targets.0.account_id",
            "is not a 12-digit AWS account id",
        ),
        (
            # Digits of another script are digits to "\\d", never to AWS.
            "aws:\n  targets:\n    - regions: [us-east-1]\n      account_id: '١٢٣٤٥٦٧٨٩٠١٢'\n",
            "aws.targets.0.account_id",
            "is not a 12-digit AWS account id",
        ),
        (
            'aws:\n  targets:\n    - regions: ["us-east-1\\n"]\n',
            "aws.targets.0.regions",
            "is not an AWS region name",
        ),
        (
            "aws:\n  targets:\n    - regions: []\n",
            "aws.targets.0.regions",
            "List should have at least 1 item after validation, not 0",
        ),
        (
            "aws:\n  concurrency: 20\n  max_pool_connections: 10\n",
            "aws",
            "concurrency (20) must not exceed max_pool_connections (10)",
        ),
        ("catalog:\n  system: 'not a name'\n", "catalog.system", "is not a valid Backstage"),
        ("catalog:\n  owner: 'component:x'\n", "catalog.owner", "not a group or user entity ref"),
        (
            "catalog:\n  annotation_prefix: 'Not.Lower'\n",
            "catalog.annotation_prefix",
            "is not a lower-case DNS subdomain",
        ),
        (
            "refresh:\n  interval_secs: 5\n",
            "refresh.interval_secs",
            "not a setting (a misspelt or unknown key)",
        ),
        (
            "aws:\n  targets:\n    - regions: [us-east-1]\n      role_arn: 'arn:aws:s3:::bucket'\n",
            "aws.targets.0.role_arn",
            "is not an IAM role ARN",
        ),
        (
            "aws:\n  reader_process: true\n",
            "aws.reader_process",
            "removed: reading now runs in the serving process; delete the key",
        ),
        (
            "aws:\n  client: lean\n",
            "aws.client",
            "removed: every AWS call now goes through aiobotocore; delete the key",
        ),
        (
            "backstage:\n  base_url: 'backstage:7007'\n",
            "backstage.base_url",
            "backstage.base_url must be an http or https URL with a host",
        ),
        (
            "backstage:\n  claims:\n    annotations: ['Aws.Amazon.com/x=y']\n",
            "backstage.claims.annotations",
            "is not a lower-case annotation key a filter can name",
        ),
        (
            "backstage:\n  base_url: 'http://admin:hunter2@backstage:7007'\n",
            "backstage.base_url",
            "must not hold credentials; set backstage.token",
        ),
        (
            "backstage:\n  token: 'two words'\n",
            "backstage.token",
            "must be one word of printable characters",
        ),
        (
            "backstage:\n  claims:\n    interval_seconds: 1\n",
            "backstage.claims.interval_seconds",
            "greater than or equal to 5",
        ),
        (
            "aws:\n  proxies: {https: 'ftp://user:hunter2@proxy:21'}\n",
            "aws.proxies",
            "aws.proxies.https must be an http or https URL with a host",
        ),
    ],
)
def test_bad_values_name_the_file_and_the_key_in_our_words(
    tmp_path: Path, text: str, key: str, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as refused:
        load_settings(path)
    message = str(refused.value)
    assert f"{path}: {key}: " in message and problem in message
    # pydantic's own words stay out: its class names and its documentation links.
    assert "pydantic" not in message and "errors.pydantic.dev" not in message
    assert "Settings" not in message and "hunter2" not in message


def test_ambient_target_takes_the_region_from_the_environment() -> None:
    assert Settings().aws.resolved_targets({"AWS_REGION": "eu-west-1"})[0].regions == ["eu-west-1"]
    with pytest.raises(ConfigError, match="no ECR region"):
        Settings().aws.resolved_targets({})


def test_secrets_stay_out_of_the_settings_repr() -> None:
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
                "proxies": {"https": "http://user:pr0xy-pw@proxy:3128"},
            },
            "server": {"refresh_token": "t0ken-value"},
        }
    )
    text = repr(settings)
    for secret in ("s3cret-id", "pr0xy-pw", "t0ken-value"):
        assert secret not in text
    assert settings.aws.proxies == {"https": "http://user:pr0xy-pw@proxy:3128"}


def test_an_organization_is_configured_with_these_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        """
aws:
  organization:
    role_name: ecr-catalog-reader
    external_id: null
    session_name: ecr-catalog
    regions: [us-east-1, eu-west-1]
    organizational_units: [ou-ab12-cdefgh34]
    include_accounts: []
    exclude_accounts: ["111122223333"]
    management_role_arn: null
    rediscover_seconds: 3600
""",
    )
    monkeypatch.setenv("ECR_CATALOG_AWS__ORGANIZATION__ROLE_NAME", "other-reader")
    settings = load_settings(path)
    organization = settings.aws.organization
    assert organization is not None and organization.role_name == "other-reader"
    assert organization.regions == ["us-east-1", "eu-west-1"]
    # With an organisation and no targets, there is no ambient target as well.
    assert settings.aws.resolved_targets({"AWS_REGION": "us-east-1"}) == []
    assert not organization.wants("111122223333") and organization.wants("444455556666")


@pytest.mark.parametrize(
    ("organization", "problem"),
    [
        ("{regions: [mars-1]}", "not an AWS region name"),
        ("{regions: [us-east-1], organizational_units: [prod]}", "is not an OU id"),
        ("{regions: [us-east-1], exclude_accounts: ['12']}", "not a 12-digit AWS account id"),
        ("{regions: [us-east-1], role_name: 'a b'}", "is not an IAM role name"),
        ("{regions: []}", "at least 1 item"),
        ("{role_name: x}", "aws.organization.regions: required, but not set"),
    ],
)
def test_a_bad_organization_is_refused_by_key(
    tmp_path: Path, organization: str, problem: str
) -> None:
    with pytest.raises(ConfigError, match=problem):
        load_settings(write(tmp_path, f"aws:\n  organization: {organization}\n"))


def test_enabled_regions_are_asked_for_by_name() -> None:
    settings = Settings(aws={"organization": {"regions": ["enabled"]}})
    assert settings.aws.organization is not None and settings.aws.organization.enabled_regions


def test_backstage_is_configured_with_these_keys(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = write(
        tmp_path,
        """
backstage:
  base_url: http://backstage-backend:7007/
  token: null
  refresh_on_change: true
  refresh_min_interval_seconds: 5
  claims:
    annotations: [aws.amazon.com/amazon-ecr-arn, ecr-catalog.io/repositories]
    interval_seconds: 300
""",
    )
    # As a Secret mounted from a file often has it: with a trailing newline.
    monkeypatch.setenv("ECR_CATALOG_BACKSTAGE__TOKEN", "b4ckstage-t0ken\n")
    settings = load_settings(path)
    backstage = settings.backstage
    assert backstage.base_url == "http://backstage-backend:7007"
    assert backstage.token is not None
    assert backstage.token.get_secret_value() == "b4ckstage-t0ken"
    assert "b4ckstage-t0ken" not in repr(settings)
    assert backstage.claims.annotations == [
        "aws.amazon.com/amazon-ecr-arn",
        "ecr-catalog.io/repositories",
    ]
    # Off while base_url is unset.
    assert Settings().backstage.base_url is None


@pytest.mark.parametrize(
    ("text", "key", "number"),
    [
        (
            "aws:\n  targets:\n    - regions: [us-east-1]\n      account_id: 123456789012\n",
            "aws.targets.0.account_id",
            "123456789012",
        ),
        (
            # YAML 1.1 reads a leading zero with digits 0-7 as octal: another number entirely.
            "aws:\n  targets:\n    - regions: [us-east-1]\n      account_id: 012345670123\n",
            "aws.targets.0.account_id",
            str(0o12345670123),
        ),
        (
            "aws:\n  organization:\n    regions: [us-east-1]\n"
            "    exclude_accounts: ['111122223333', 12345678901]\n",
            "aws.organization.exclude_accounts.1",
            "12345678901",
        ),
    ],
)
def test_an_unquoted_account_id_is_told_to_be_quoted(
    tmp_path: Path, text: str, key: str, number: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        load_settings(write(tmp_path, text))
    message = str(refused.value)
    assert f"{key}: quote it: account ids are strings of 12 digits" in message
    assert f"read as the number {number}" in message
    # pydantic's own words are not there.
    assert "valid string" not in message


def test_an_unquoted_account_id_from_the_environment_is_told_too(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "ECR_CATALOG_AWS__TARGETS", '[{"regions": ["us-east-1"], "account_id": 123456789012}]'
    )
    with pytest.raises(ConfigError, match="quote it: account ids are strings of 12 digits"):
        load_settings()


def test_a_quoted_account_id_keeps_its_leading_zero(tmp_path: Path) -> None:
    text = "aws:\n  targets:\n    - regions: [us-east-1]\n      account_id: '012345678901'\n"
    assert load_settings(write(tmp_path, text)).aws.targets[0].account_id == "012345678901"
