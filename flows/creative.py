"""What kind of video a request makes beyond its topic, style and cast: one model, so a new
creative choice is one field here (Prefect shows it in the make-video form under "creative";
the CLI and the API take the same fields)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from config.bible import director_look, user_picture
from flows.choices import DirectorName
from tasks.music import read_track
from tasks.storyboard import MAX_CTA_CHARS, Ad, Mode, Platform, Product, Text

AD_FIELDS = ("product", "product_image", "cta", "platform", "length")
MUSIC_VIDEO_FIELDS = ("track", "lyrics")


class Creative(BaseModel):
    """The video's mode (an explainer, a music video or an ad), a music video's track, what an
    ad sells, and a director's look for every shot."""

    model_config = ConfigDict(extra="forbid", frozen=True, use_enum_values=True)

    mode: Mode = Field(Mode.explainer, description="explainer (as long as its narration), "
                       "music-video or ad (a platform's slot, ending on a call to action)")
    director: DirectorName | None = Field(None, description="A director's look from "
                                          "config/directors: framing, lenses, camera, pacing "
                                          "and palette (empty: the style's own).")
    track: Path | None = Field(None, validate_default=True, description=(
        "A music video's track (mp3, wav, m4a, flac; on the machine that runs it): the video "
        "lasts as long, cut on its beats."))
    lyrics: Path | None = Field(None, description="A music video's lyrics: plain text, or LRC "
                                "([mm:ss.xx] before each line) for karaoke captions.")
    product: Text(100) | None = Field(None, validate_default=True,
                                      description="An ad's product, by name.")
    product_image: list[Path] = Field(default_factory=list, max_length=8, description=(
        "Pictures of the product (on the machine that runs it): every shot of it is drawn "
        "from them. None: a packshot is generated from its name."))
    cta: Text(MAX_CTA_CHARS) | None = Field(None, validate_default=True, description=(
        "An ad's call to action, set on its end card (at most 60 characters)."))
    platform: Platform | None = Field(None, description="Where an ad runs, which sets its "
                                      "shape: tiktok, reels, shorts (9:16), youtube-preroll "
                                      "(16:9) or feed (1:1). Default: tiktok.")
    length: Literal[15, 30, 60] = Field(15, description="An ad's length in seconds.")
    voice_over: bool = Field(True, description="An ad's voice-over.")

    @field_validator(*AD_FIELDS, *MUSIC_VIDEO_FIELDS)
    @classmethod
    def _of_its_mode(cls, value, info: ValidationInfo):
        """An ad needs its product and call to action, a music video its track; each mode's
        fields are for that mode alone."""
        mode = Mode(info.data.get("mode", Mode.explainer))
        owner = Mode.ad if info.field_name in AD_FIELDS else Mode.music_video
        needed = {"product", "cta", "track"}
        if mode is owner and info.field_name in needed and value is None:
            raise ValueError(f"a{'n' if owner is Mode.ad else ''} {owner.value} needs its "
                             f"{info.field_name} (--{info.field_name})")
        if mode is not owner and value not in (None, [], 15):
            raise ValueError(f"is for --mode {owner.value} only (the mode is {mode.value})")
        return value

    def request_fields(self) -> dict:
        """The VideoRequest fields these choices give, their profiles, pictures and track read
        (a problem: BibleError or TrackError, naming the field)."""
        fields = {"director": director_look(self.director) if self.director else None}
        if Mode(self.mode) is Mode.music_video:
            fields["track"] = read_track(self.track, self.lyrics)
        if Mode(self.mode) is Mode.ad:
            pictures = [user_picture(Path(path).expanduser(), f"product_image: {str(path)!r}")
                        for path in self.product_image]
            fields["ad"] = Ad(product=Product(name=self.product, references=pictures),
                              cta=self.cta, platform=self.platform or Platform.tiktok,
                              seconds=self.length, voice_over=self.voice_over)
        return fields
