"""The render options every video flow and the CLI take: one model, so a new option is one
field here (Prefect shows it in each deployment's form under "options")."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from config.settings import BucketLocation, Quality, Settings, load_settings
from flows.choices import ProfileName


class RenderOptions(BaseModel):
    """How and where a video is rendered and published; anything left empty comes from the
    environment, .env or the profile."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    profile: ProfileName | None = Field(None, description="Providers to use: local (offline, "
                                        "free), ollama (local, with a model in Ollama) or cloud. "
                                        "Default: the server's.")
    out: Path | None = Field(None, description="Folder to publish into (default ./out).")
    short_side: int | None = Field(None, ge=64, le=4096,
                                   description="Short side of the video in pixels (default 1080).")
    publish: BucketLocation | None = Field(None, description="Also publish to gs:// or "
                                           "s3://BUCKET/PREFIX.")
    max_cost: float | None = Field(None, ge=0,
                                   description="Refuse to spend more than this many US dollars.")
    quality: Quality | None = Field(None, description="Video models by quality: draft, "
                                    "standard or premium (config/router.yaml sends each shot to "
                                    "the model that suits it), or off (every shot on the "
                                    "profile's video chain). Default: the profile's.")
    sync_lips: bool | None = Field(None, description="Lip-sync the characters who speak or "
                                   "sing on screen (default: yes).")

    def settings(self) -> Settings:
        """These options over the environment, .env and the profile."""
        return load_settings(self.profile, **self.model_dump(exclude={"profile"}))
