"""Settings: one object, one precedence: explicit overrides > environment (REELFLOW_*) >
`.env` > the profile's YAML (config/profiles/NAME.yaml) > the defaults below."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict, YamlConfigSettingsSource

from config.catalog import CONFIG_DIR

DEFAULT_STORE = Path("~/.cache/reelflow")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="REELFLOW_", env_file=".env", extra="ignore", frozen=True
    )

    profile: str = Field("local", pattern=r"^[a-z0-9_-]+$")
    store: Path = Field(DEFAULT_STORE, description="Root of the artifact store")
    out: Path = Field(Path("out"), description="Folder videos are published to")
    short_side: int = Field(1080, ge=64, le=4096, description="Short side of the video, px")
    fps: int = Field(30, ge=6, le=60)
    prices: Path | None = Field(None, description="A price table to use instead of config/")
    planner: str = "local"
    speech: str = "espeak"
    image: str = "local"
    video: str = "kenburns"
    # Per provider name: its Options, e.g. {"espeak": {"rate": 160}}.
    provider_options: dict[str, dict] = Field(default_factory=dict)


def profile_path(name: str) -> Path:
    return CONFIG_DIR / "profiles" / f"{name}.yaml"


def load_settings(profile: str | None = None, **overrides) -> Settings:
    """Settings for `profile` (or REELFLOW_PROFILE, or "local"); None overrides are ignored."""
    name = profile or os.environ.get("REELFLOW_PROFILE") or "local"
    path = profile_path(name)
    if not path.is_file():
        raise ValueError(f"profile: no profile named {name!r} in {path.parent}")

    class ProfiledSettings(Settings):
        @classmethod
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings,
                                       dotenv_settings, file_secret_settings):
            return (init_settings, env_settings, dotenv_settings,
                    YamlConfigSettingsSource(settings_cls, yaml_file=path))

    given = {key: value for key, value in overrides.items() if value is not None}
    return ProfiledSettings(profile=name, **given)
