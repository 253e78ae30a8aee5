"""Settings: one object, one precedence: explicit overrides > environment (REELFLOW_*) >
`.env` > the profile's YAML (config/profiles/NAME.yaml) > the defaults below."""

from __future__ import annotations

import os
from pathlib import Path

from typing import Annotated, Literal

from pydantic import AfterValidator, AliasChoices, BeforeValidator, Field, SecretStr
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict, YamlConfigSettingsSource

from cache.buckets import BucketTarget, check_location
from config.catalog import CONFIG_DIR

DEFAULT_STORE = "~/.cache/reelflow"


def _comma_list(value):
    """A list from one variable: REELFLOW_VIDEO="veo,replicate:wan-video/wan-2.2-i2v-fast"."""
    if isinstance(value, str):
        return [spec.strip() for spec in value.split(",") if spec.strip()]
    return value


# Providers for one modality, preferred first: each falls back to the next when it keeps failing.
ProviderChain = Annotated[list[str], NoDecode, BeforeValidator(_comma_list), Field(min_length=1)]


def _split_folders(value):
    """REELFLOW_CHARACTERS="./cast:/shared/cast" → a list, as PATH is split."""
    if isinstance(value, str):
        return [Path(part) for part in value.split(os.pathsep) if part.strip()]
    return value


def _a_bucket(location: str) -> str:
    BucketTarget.parse(location)
    return location


def _a_folder_or_a_bucket(location: str) -> str:
    check_location(location)
    return location


# Where videos are published besides the out folder, and where the store is: checked as given.
BucketLocation = Annotated[str, AfterValidator(_a_bucket)]
StoreLocation = Annotated[str, AfterValidator(_a_folder_or_a_bucket)]

# The one dial for the video models: the router's rule set (tasks/router.py); off: every clip
# on the profile's video chain.
Quality = Literal["off", "draft", "standard", "premium"]

ProfileFolders = Annotated[list[Path], NoDecode, BeforeValidator(_split_folders)]


class BucketSettings(BaseSettings):
    """How this machine reaches a bucket (cache.open_bucket): from the environment and `.env`
    only, as credentials are, because a store is opened where no profile is known."""

    model_config = SettingsConfigDict(
        env_prefix="REELFLOW_", env_file=".env", extra="ignore", frozen=True
    )

    gcs_project: str | None = None
    gcs_signing_key: Path | None = Field(None, description="Service-account JSON to sign URLs")
    s3_endpoint_url: str | None = Field(None, description="An S3-compatible service's endpoint "
                                        "(MinIO, R2, B2, Wasabi); default: AWS, or the SDK's own "
                                        "AWS_ENDPOINT_URL_S3")
    s3_addressing_style: Literal["auto", "path", "virtual"] = Field(
        "auto", description="path: https://ENDPOINT/BUCKET/KEY, as many S3-compatible "
        "services want")


class Settings(BucketSettings):
    profile: str = Field("local", pattern=r"^[a-z0-9_-]+$")
    store: StoreLocation = Field(DEFAULT_STORE, description="Artifact store: a folder, or gs:// or "
                       "s3://BUCKET/PREFIX shared by every machine of a cluster")
    store_max_mb: float | None = Field(None, gt=0, description="`reelflow cache gc` keeps the "
                                       "store's blobs within this many MB: the most recently "
                                       "published videos that fit")
    lease_seconds: float = Field(60, ge=1, description="In a bucket store, the machine making a "
                                 "node renews its lease every third of this; another machine "
                                 "takes the node over after seeing the lease unrenewed this long")
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = Field(None, description="Scheduler of an existing Dask cluster, "
                                     "e.g. tcp://10.0.0.5:8786")
    out: Path = Field(Path("out"), description="Folder videos are published to")
    short_side: int = Field(1080, ge=64, le=4096, description="Short side of the video, px")
    fps: int = Field(30, ge=6, le=60)
    loudness_lufs: float = Field(-14, ge=-36, le=-6, description="Integrated loudness of the "
                                 "soundtrack, LUFS: -14 for short-video platforms, -16 for "
                                 "podcasts, -23 for broadcast; its true peak stays under -1.5 dBTP")
    scene_pad_seconds: float = Field(0.5, ge=0.1, le=3, description="Quiet after each scene's "
                                     "narration before the next scene; a scene lasts as long as "
                                     "its speech plus this")
    prices: Path | None = Field(None, description="A price table laid over config/prices.yaml")
    planner: ProviderChain = ["local"]
    speech: ProviderChain = ["espeak"]
    image: ProviderChain = ["local"]
    video: ProviderChain = ["kenburns"]
    quality: Quality = Field("off", description="The shot router's rule set: draft, standard "
                             "or premium; off: every clip on the video chain")
    router: Path | None = Field(None, description="Router rules replacing config/router.yaml")
    # Embeds shots and references for the identity gate (tasks/gates.py).
    embedding: ProviderChain = ["local"]
    # Moves the lips of the characters who speak or sing on screen (tasks/lipsync.py).
    lipsync: ProviderChain = ["local"]
    sync_lips: bool = Field(True, description="Lip-sync the characters who speak or sing on "
                            "screen; false: their clips as they were made")
    max_attempts: int = Field(3, ge=1, le=10, description="Paid attempts per keyframe or clip "
                              "while its gate fails; then the best is published and flagged")
    # Per provider name: its Options, e.g. {"espeak": {"rate": 160}}; "MODALITY:NAME" for one
    # modality's provider of a shared name, e.g. {"embedding:local": {"threshold": 0.4}}.
    provider_options: dict[str, dict] = Field(default_factory=dict)
    # Per speech provider: speaker (or storyboard voice) → that provider's voice id.
    voices: dict[str, dict[str, str]] = Field(default_factory=dict)
    # Calls at once per provider in one process; Prefect tag limits bound them across processes.
    provider_concurrency: dict[str, Annotated[int, Field(ge=1)]] = Field(default_factory=dict)
    default_concurrency: int = Field(4, ge=1)
    max_cost: float | None = Field(None, ge=0, description="Stop before spending more (USD)")
    characters: ProfileFolders = Field(default_factory=list, description="Folders of character "
                                       "profiles besides config/characters (os.pathsep-separated)")
    locations: ProfileFolders = Field(default_factory=list, description="Folders of location "
                                      "profiles besides config/locations")
    publish: BucketLocation | None = Field(None, description="Also publish to gs:// or "
                                           "s3://BUCKET/PREFIX")
    url_expiry_s: int = Field(7 * 86400, ge=60, le=7 * 86400, description="How long a published "
                              "video's signed URL lasts", validation_alias=AliasChoices(
                                  "url_expiry_s", "reelflow_url_expiry_s",
                                  "reelflow_gcs_url_expiry_s"))  # its name before S3
    # The HTTP API (`reelflow api`).
    api_keys_file: Path | None = Field(None, description="SHA-256 hashes of the API's keys, "
                                       "one per line (`reelflow api-key` makes a key)")
    api_requests_per_minute: int = Field(120, ge=1, description="Requests per minute per key")
    api_jobs_at_once: int = Field(10, ge=1, description="Jobs queued or running per key")
    api_cors_origins: Annotated[list[str], NoDecode, BeforeValidator(_comma_list)] = Field(
        default_factory=list, description="Origins browsers may call the API from (none: "
        "CORS off), comma-separated")
    api_public_url: str | None = Field(None, description="The API's address as clients reach it, "
                                       "for video links (default: the address it listens on)")
    api_webhook_secret: SecretStr | None = Field(None, description="Signs the webhooks a job "
                                                 "asks for (HMAC-SHA256); without it a job "
                                                 "cannot ask for one")
    api_url_secret: SecretStr | None = Field(None, description="Signs links to videos that "
                                             "need no key (the UI's link, /video-url); without "
                                             "it `reelflow api` makes one per start")
    # `reelflow mcp`: a client of a running API.
    api_url: str = Field("http://127.0.0.1:8000", description="The API `reelflow mcp` calls")
    api_key: SecretStr | None = Field(None, description="The key `reelflow mcp` calls it with")


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
