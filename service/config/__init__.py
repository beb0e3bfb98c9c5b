"""Settings: the one configuration object, loaded from a YAML file and ``ECR_CATALOG_*`` variables.

Precedence, highest first: explicit arguments, environment variables, the YAML file (read by
pydantic-settings' own ``YamlConfigSettingsSource``), defaults. Everything is validated here,
at startup, so a bad file fails before any AWS call is made, with a ``ConfigError`` that names
the file and the key in this project's words.
"""

from __future__ import annotations

import os
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import Field, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    YamlConfigSettingsSource,
)

from ..errors import ConfigError
from .aws import AwsSettings, OrganizationSettings, TargetSettings
from .partition import PartitionSettings
from .regions import KnownRegions, check_regions
from .sections import (
    BackstageSettings,
    CacheSettings,
    CatalogSettings,
    ClaimsSettings,
    EventsSettings,
    PostureSettings,
    RefreshSettings,
    ServerSettings,
)

__all__ = [
    "AwsSettings",
    "BackstageSettings",
    "CacheSettings",
    "ClaimsSettings",
    "CatalogSettings",
    "EventsSettings",
    "KnownRegions",
    "OrganizationSettings",
    "PartitionSettings",
    "PostureSettings",
    "RefreshSettings",
    "ServerSettings",
    "Settings",
    "TargetSettings",
    "describe_invalid",
    "load_settings",
]

ENV_PREFIX = "ECR_CATALOG_"
CONFIG_ENV_VAR = "ECR_CATALOG_CONFIG"


class Settings(BaseSettings):
    """All of the service's configuration."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
        use_attribute_docstrings=True,
    )

    aws: AwsSettings = Field(default_factory=AwsSettings)
    """How the service reaches ECR: targets, the organisation, network, clients, retries."""
    catalog: CatalogSettings = Field(default_factory=CatalogSettings)
    """Names and conventions of the entities."""
    cache: CacheSettings = Field(default_factory=CacheSettings)
    """How long each kind of ECR answer is reused."""
    refresh: RefreshSettings = Field(default_factory=RefreshSettings)
    """The background refresh."""
    server: ServerSettings = Field(default_factory=ServerSettings)
    """The HTTP listener and its bounds."""
    events: EventsSettings = Field(default_factory=EventsSettings)
    """``POST /events/ecr``: ECR push, delete and scan events from EventBridge."""
    backstage: BackstageSettings = Field(default_factory=BackstageSettings)
    """The way back to Backstage: refresh requests after a change, and claims."""
    posture: PostureSettings = Field(default_factory=PostureSettings)
    """Which posture checks each repository gets, and their thresholds."""
    partition: PartitionSettings = Field(default_factory=PartitionSettings)
    """This process's part of a fleet (a StatefulSet) of processes; count 1: it serves
    everything."""
    log_format: Literal["text", "json"] = "text"
    """``json`` writes one JSON object per log line, for log shippers; ``text`` is for
    people."""
    state_dir: Path | None = None
    """Where each source's last good data, the organisation's accounts and the claims are kept
    across restarts; none keeps them in memory only."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # No .env or secrets-dir reading: the file and the environment are the whole story.
        config_file = _CONFIG_FILE.get()
        if config_file is None:
            return init_settings, env_settings
        return (
            init_settings,
            env_settings,
            YamlConfigSettingsSource(
                settings_cls, yaml_file=config_file, yaml_file_encoding="utf-8"
            ),
        )


# The file load_settings reads, for the settings it builds: a context variable rather than a
# class attribute, so Settings(...) built elsewhere (tests, the demo) never reads a file.
_CONFIG_FILE: ContextVar[Path | None] = ContextVar("ecr_catalog_config_file", default=None)


def load_settings(
    config_file: Path | None = None,
    environ: dict[str, str] | None = None,
    known_regions: KnownRegions | None = None,
    **overrides: Any,
) -> Settings:
    """Build Settings from the config file (``--config`` or ECR_CATALOG_CONFIG) and environment;
    with ``known_regions``, refuse a region that is not among them (config.regions).

    Raises ConfigError, naming the file and the key, for anything that cannot be used.
    """
    env = os.environ if environ is None else environ
    if config_file is None and env.get(CONFIG_ENV_VAR):
        config_file = Path(env[CONFIG_ENV_VAR])
    settings = _settings_from(config_file, overrides)
    if known_regions is not None:
        where = str(config_file) if config_file is not None else "settings"
        check_regions(settings.aws, known_regions, where, env)
    return settings


def _settings_from(config_file: Path | None, overrides: dict[str, Any]) -> Settings:
    if config_file is not None and not config_file.is_file():
        raise ConfigError(f"cannot read config file {config_file}: no such file")
    token = _CONFIG_FILE.set(config_file)
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_invalid(exc, config_file)) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"config file {config_file} is not valid YAML: {exc}") from None
    except (TypeError, ValueError, AttributeError):
        # pydantic-settings merges the file's top level as a mapping; anything else fails here.
        raise ConfigError(
            f"config file {config_file} must hold a mapping of settings at the top level"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {config_file}: {exc}") from None
    finally:
        _CONFIG_FILE.reset(token)


# Keys of earlier versions, and what became of them.
REMOVED_KEYS = {
    ("aws", "reader_process"): "removed: reading now runs in the serving process; delete the key",
    ("aws", "client"): "removed: every AWS call now goes through aiobotocore; delete the key",
}


def describe_invalid(exc: ValidationError, config_file: Path | None) -> str:
    """Each problem as ``<where>: <key path>: <what is wrong>``, in our words."""
    where = str(config_file) if config_file is not None else "settings"
    lines = []
    for error in exc.errors(include_url=False):
        location = tuple(str(part) for part in error["loc"])
        key = ".".join(location) or "(the whole file)"
        if location in REMOVED_KEYS:
            problem = REMOVED_KEYS[location]
        elif error["type"] == "extra_forbidden":
            problem = "not a setting (a misspelt or unknown key)"
        elif error["type"] == "missing":
            problem = "required, but not set"
        else:
            problem = str(error["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {key}: {problem}")
    return "invalid configuration:\n" + "\n".join(f"  {line}" for line in lines)
