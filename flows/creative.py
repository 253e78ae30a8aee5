"""What kind of video a request makes beyond its topic, style and cast: one model, so a new
creative choice is one field here (Prefect shows it in the make-video form under "creative";
the CLI and the API take the same fields)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from config.bible import director_look
from flows.choices import DirectorName


class Creative(BaseModel):
    """A director's look for every shot."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    director: DirectorName | None = Field(None, description="A director's look from "
                                          "config/directors: framing, lenses, camera, pacing "
                                          "and palette (empty: the style's own).")

    def request_fields(self) -> dict:
        """The VideoRequest fields these choices give, their profiles read."""
        return {"director": director_look(self.director) if self.director else None}
