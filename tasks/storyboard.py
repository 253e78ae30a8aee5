"""The storyboard contract: what a user asks for and what the planner hands to the renderer.

Every other module reads these types. Styles are checked against config/styles.yaml.
"""

from __future__ import annotations

import re
import unicodedata
from enum import Enum
from typing import Annotated, ClassVar, Literal

from pydantic import (
    AfterValidator,
    ValidationError,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from config.catalog import styles
from tasks.language import detect, language, unreadable

MAX_SCENES = 200
MAX_TOPIC_CHARS = 2000  # a prompt of a paragraph, as the HTTP API takes it
MAX_LINE_CHARS = 1_000
MAX_TITLE_CHARS = 200
MAX_LINES = 50  # per scene
MAX_SCENE_SECONDS = 120
MAX_TAKES = 99
MIN_TRIM_SECONDS = 0.2
MAX_SCRIPT_CHARS = 50_000
# A scene's on-screen text: its idea in a few words (about 6), set large on its keyframe.
MAX_ON_SCREEN_CHARS = 60
NARRATOR = "narrator"

# Ids become parts of file and object names: a conservative slug keeps them safe there.
ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,63}$"
# A voice id of any provider (eSpeak's en-us+f3, ElevenLabs' 21m00Tcm4TlvDq8ikWAM).
VOICE_PATTERN = r"^[A-Za-z0-9_+-]{1,64}$"
MAX_CAST = 8
# The pause between two lines of a scene: compose leaves it, planners count it in a scene's length.
LINE_GAP_SECONDS = 0.25
# Colours for characters whose profile names none: distinct on dark and light pictures.
CAST_COLORS = ["#F2C14E", "#5FAD56", "#4D9DE0", "#E15554", "#B07BF7", "#3BCEAC"]


def _reject_control_characters(value: str) -> str:
    """No subtitle or speech engine can show these; whitespace controls are allowed."""
    for char in value:
        if char not in "\n\r\t" and unicodedata.category(char) in ("Cc", "Cs", "Co"):
            raise ValueError(f"contains a control character (U+{ord(char):04X})")
    return value


def _fold_whitespace(value: str) -> str:
    return re.sub(r"\s+", " ", value).strip()


def _fold_whitespace_keep_lines(value: str) -> str:
    """Spaces folded within each line; line breaks kept (a dialogue line is one line); blank
    lines between paragraphs folded to one."""
    paragraphs = re.split(r"\n\s*\n", value.strip())
    return "\n\n".join(
        "\n".join(_fold_whitespace(line) for line in p.splitlines() if line.strip())
        for p in paragraphs if p.strip())


def _not_blank(value: str) -> str:
    if not value:
        raise ValueError("must not be empty")
    return value


def _known_style(value: str) -> str:
    if value not in styles():
        raise ValueError(f"unknown style {value!r} (known: {', '.join(sorted(styles()))})")
    return value


def _known_language(tag: str) -> str:
    language(tag)
    return tag


Style = Annotated[str, AfterValidator(_known_style)]
Voice = Annotated[str, Field(pattern=VOICE_PATTERN)]
# A language code of config/languages.yaml, or a regional tag of one (pt-br, en-gb).
LanguageTag = Annotated[str, Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$"),
                        AfterValidator(_known_language)]
Color = Annotated[str, Field(pattern=r"^#[0-9A-Fa-f]{6}$")]


def Text(max_chars: int, *, paragraphs: bool = False, blank_ok: bool = False):  # noqa: N802
    """A user-text field: length-checked, control characters refused, whitespace folded."""
    fold = _fold_whitespace_keep_lines if paragraphs else _fold_whitespace
    validators = [AfterValidator(_reject_control_characters), AfterValidator(fold)]
    if not blank_ok:
        validators.append(AfterValidator(_not_blank))
    return Annotated[str, StringConstraints(max_length=max_chars), *validators]


class Aspect(str, Enum):
    portrait = "9:16"
    landscape = "16:9"
    square = "1:1"

    def size(self, short_side: int) -> tuple[int, int]:
        """Width and height for this aspect, both even as H.264 requires."""
        long_side = 2 * round(short_side * 16 / 9 / 2)
        return {
            Aspect.portrait: (short_side, long_side),
            Aspect.landscape: (long_side, short_side),
            Aspect.square: (short_side, short_side),
        }[self]


class CameraMotion(str, Enum):
    static = "static"
    zoom_in = "zoom_in"
    zoom_out = "zoom_out"
    pan_left = "pan_left"
    pan_right = "pan_right"
    pan_up = "pan_up"
    pan_down = "pan_down"


class ShotSize(str, Enum):
    """How close the camera is, closest first: it decides which video model a scene goes to
    (config/router.yaml)."""

    ECU = "ECU"  # extreme close-up: an eye, a hand
    CU = "CU"  # close-up: a face
    MCU = "MCU"  # medium close-up: head and shoulders
    MS = "MS"  # medium shot: from the waist
    LS = "LS"  # long shot: a whole figure in its setting
    ELS = "ELS"  # extreme long shot: establishing, the place more than the people


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Picture(_Strict):
    """A user's picture (a reference or a sprite): the file it is read from and the digest of
    its bytes. Keys use the digest only, so moving or renaming the file changes nothing."""

    path: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")


class SpritePose(str, Enum):
    talking = "talking"
    listening = "listening"


class Character(_Strict):
    """A recurring character of the story bible (config/characters/*.yaml and the user's folders).
    Every field that shapes a picture or a voice is part of the keys that use it."""

    kind: ClassVar[str] = "character"
    id: str = Field(pattern=ID_PATTERN)
    name: Text(100)
    appearance: Text(MAX_LINE_CHARS, blank_ok=True) = ""
    wardrobe: Text(MAX_LINE_CHARS, blank_ok=True) = ""
    personality: Text(MAX_LINE_CHARS, blank_ok=True) = ""
    catchphrases: list[Text(200)] = Field(default_factory=list, max_length=20)
    color: Color | None = None  # caption name, silhouettes; default: one of CAST_COLORS
    voices: dict[Annotated[str, Field(pattern=ID_PATTERN)], Voice] = Field(
        default_factory=dict, description="Speech provider name → that provider's voice id")
    references: list[Picture] = Field(default_factory=list, max_length=8)
    sprites: dict[SpritePose, Picture] = Field(default_factory=dict)
    # Which take of its generated reference sheet it is drawn from: a render makes a new one
    # when most of its shots drift from the first (tasks/gates.py).
    reference_take: int = Field(1, ge=1, le=MAX_TAKES)

    @field_validator("sprites")
    @classmethod
    def _both_sprites(cls, sprites: dict) -> dict:
        if sprites and set(sprites) != set(SpritePose):
            raise ValueError("give both talking and listening, or neither")
        return sprites

    @property
    def shown_color(self) -> str:
        """Its own colour, or one picked from its id (the same in every run)."""
        return self.color or CAST_COLORS[sum(self.id.encode()) % len(CAST_COLORS)]

    def describe(self) -> str:
        """The character as the picture prompts say it: name, appearance, wardrobe."""
        return "; ".join(filter(None, [self.name, self.appearance,
                                       self.wardrobe and f"wearing {self.wardrobe}"]))


class Location(_Strict):
    """A place of the story bible (config/locations/*.yaml and the user's folders)."""

    kind: ClassVar[str] = "location"
    id: str = Field(pattern=ID_PATTERN)
    name: Text(100, blank_ok=True) = ""
    description: Text(MAX_LINE_CHARS)
    lighting: Text(MAX_LINE_CHARS, blank_ok=True) = ""
    palette: list[Color] = Field(default_factory=list, max_length=8)
    camera: Text(MAX_LINE_CHARS, blank_ok=True) = ""
    references: list[Picture] = Field(default_factory=list, max_length=8)

    def describe(self) -> str:
        """The place as the picture prompts say it: description, lighting, camera."""
        return "; ".join(filter(None, [self.description, self.lighting and f"lit by {self.lighting}",
                                       self.camera and f"camera: {self.camera}"]))


class Transition(str, Enum):
    """How one shot gives way to the next (an ffmpeg xfade over `seconds`)."""

    cut = "cut"
    crossfade = "crossfade"
    dissolve = "dissolve"
    fade_black = "fade_black"

    @property
    def xfade(self) -> str:
        return {"cut": "fade", "crossfade": "fade", "dissolve": "dissolve",
                "fade_black": "fadeblack"}[self.value]

    @property
    def seconds(self) -> float:
        """How long it lasts (a cut: no time at all)."""
        return {"cut": 0.0, "crossfade": 0.4, "dissolve": 0.8, "fade_black": 0.6}[self.value]


class DirectorLook(_Strict):
    """A director's look (config/directors/*.yaml, a file drop): how every shot is framed, lit,
    moved and paced. The planner takes its camera moves and shot lengths; every picture prompt
    says the rest; compose cuts with its transition."""

    id: str = Field(pattern=ID_PATTERN)
    name: Text(100)
    description: Text(MAX_LINE_CHARS)  # what it looks like, and whom it evokes
    palette: list[Color] = Field(min_length=2, max_length=8)
    lenses: Text(MAX_LINE_CHARS)
    framing: Text(MAX_LINE_CHARS)
    camera: list[CameraMotion] = Field(min_length=1, max_length=len(CameraMotion))
    shot_seconds: tuple[float, float] = Field(description="Shortest and longest shot")
    transition: Transition = Transition.crossfade
    prompt: Text(MAX_LINE_CHARS)

    @field_validator("shot_seconds")
    @classmethod
    def _a_range(cls, bounds: tuple[float, float]) -> tuple[float, float]:
        low, high = bounds
        if not 0.5 <= low <= high <= MAX_SCENE_SECONDS:
            raise ValueError(f"give the shortest then the longest shot, 0.5 to "
                             f"{MAX_SCENE_SECONDS} s")
        return bounds

    def describe(self) -> str:
        """The look as every picture prompt says it."""
        return (f"Look: {self.prompt}. Lenses: {self.lenses}. Framing: {self.framing}. "
                f"Palette: {', '.join(self.palette)}.")


class Mode(str, Enum):
    """What a video is: an explainer is as long as its narration; a music video as long as its
    track, cut on its beats; an ad fills its platform's slot and ends on a call to action."""

    explainer = "explainer"
    music_video = "music-video"
    ad = "ad"


class Platform(str, Enum):
    """Where an ad runs: it decides the ad's shape."""

    tiktok = "tiktok"
    reels = "reels"
    shorts = "shorts"
    youtube_preroll = "youtube-preroll"
    feed = "feed"

    @property
    def aspect(self) -> Aspect:
        return {"youtube-preroll": Aspect.landscape, "feed": Aspect.square}.get(
            self.value, Aspect.portrait)


PRODUCT_ID = "product"  # its reference node is ref-product
MAX_CTA_CHARS = 60
AD_END_CARD_SECONDS = 3.0
AD_SHOT_SECONDS = 3.0  # an ad's shortest shot: a line of voice-over fits in it


class Product(_Strict):
    """What an ad sells: every scene that shows it is drawn from its pictures."""

    kind: ClassVar[str] = "product"
    id: Literal["product"] = PRODUCT_ID
    name: Text(100)
    references: list[Picture] = Field(default_factory=list, max_length=8)

    def describe(self) -> str:
        return self.name


class Ad(_Strict):
    """An ad's product, the call to action its end card sets, and the slot it fills."""

    product: Product
    cta: Text(MAX_CTA_CHARS)
    platform: Platform = Platform.tiktok
    seconds: Literal[15, 30, 60] = 15
    voice_over: bool = True


MIN_TRACK_SECONDS, MAX_TRACK_SECONDS = 5, 15 * 60
MUSIC_VIDEO_SHOT_SECONDS = (2.0, 6.0)
BEAT_SLACK = 0.05  # seconds a bar line may be off its ideal place and still end a shot


class LyricLine(_Strict):
    """A line of a song's lyrics, sung from `start` to `end` seconds into its track."""

    start: float = Field(ge=0, le=MAX_TRACK_SECONDS)
    end: float = Field(gt=0, le=MAX_TRACK_SECONDS)
    text: Text(MAX_LINE_CHARS)


class Track(_Strict):
    """A music video's backing track, read (tasks/music.py): how long it is, its tempo, its
    beats, the beats that start its bars and where its sections start (all in seconds), and
    its lyrics (timed lines where the user's file has timings)."""

    path: str
    digest: str = Field(pattern=r"^[0-9a-f]{64}$")
    seconds: float = Field(ge=MIN_TRACK_SECONDS, le=MAX_TRACK_SECONDS)
    tempo: float = Field(gt=0, description="Beats a minute")
    beats: list[float] = Field(min_length=2)
    bars: list[float] = Field(default_factory=list)
    sections: list[float] = Field(default_factory=list)
    lyrics: Text(MAX_SCRIPT_CHARS, paragraphs=True, blank_ok=True) = ""
    sung: list[LyricLine] = Field(default_factory=list, description="Timed lyrics")

    def sung_over(self, start: float, end: float) -> list[tuple[float, float]]:
        """When a line is sung from `start` to `end` seconds into the track, timed from `start`;
        all of it when the lyrics have no timings (then it may be sung anywhere)."""
        if not self.sung:
            return [(0.0, round(end - start, 6))]
        return [(round(max(line.start, start) - start, 6), round(min(line.end, end) - start, 6))
                for line in self.sung if line.start < end and line.end > start]

    def cuts(self, shortest: float, longest: float) -> list[float]:
        """Where its scenes end: on bar lines, each shot a whole number of bars between
        `shortest` and `longest` seconds where the tempo allows (on beats where a bar is longer
        than `longest`), a section's start taken where it falls in that range; the last cut
        is the track's end."""
        bar = (self.bars[1] - self.bars[0]) if len(self.bars) > 1 else 0.0
        grid = self.bars if 0 < bar <= longest else self.beats
        sections = set(self.sections)
        cuts, start = [], 0.0

        def within(times: list[float]) -> list[float]:
            """Cuts that make a shot of the right length (a beat found a little early counts)
            and leave room for one more."""
            return [t for t in times if shortest - BEAT_SLACK <= t - start <= longest + BEAT_SLACK
                    and self.seconds - t >= shortest]

        while self.seconds - start > longest:
            fitting = within(grid) or within(self.beats)  # a bar line missing: a beat
            if not fitting:
                break
            target = start + (shortest + longest) / 2
            chosen = next((t for t in fitting if t in sections), None)
            cut = chosen if chosen is not None else min(fitting, key=lambda t: abs(t - target))
            cuts.append(cut)
            start = cut
        return [*cuts, self.seconds]


class Line(_Strict):
    speaker: str = Field(NARRATOR, pattern=ID_PATTERN)
    text: Text(MAX_LINE_CHARS)


class VideoRequest(_Strict):
    """What a person asks for: a topic or their own script, and how it should look and sound."""

    topic: Text(MAX_TOPIC_CHARS) | None = None
    script: Text(MAX_SCRIPT_CHARS, paragraphs=True) | None = None
    ad: Ad | None = None  # an ad's product and call to action
    track: Track | None = None  # a music video's
    scenes: int = Field(6, ge=1, le=MAX_SCENES, description="Number of scenes")
    aspect: Aspect = Aspect.portrait
    style: Style = "documentary"
    # None: each speech provider's voice for the language (tasks/speech.py: voice_for).
    voice: Voice | None = None
    # None: detected from the script, or the topic.
    language: LanguageTag | None = Field(None, validate_default=True)
    music: bool = True
    seed: int = Field(0, ge=0, le=2**31 - 1)
    # The cast in order (the planner writes a dialogue between them) and the places it may use.
    characters: list[Character] = Field(default_factory=list, max_length=MAX_CAST)
    locations: list[Location] = Field(default_factory=list, max_length=50)
    director: DirectorLook | None = None

    @model_validator(mode="before")
    @classmethod
    def _platform_shape(cls, data):
        """An ad is the shape of its platform."""
        if isinstance(data, dict) and data.get("ad") is not None:
            try:
                data = {**data, "aspect": Ad.model_validate(data["ad"]).platform.aspect}
            except ValidationError:
                pass  # said when the field itself is validated
        return data

    @property
    def mode(self) -> Mode:
        return mode_of(self.ad, self.track)

    @property
    def shot_seconds(self) -> tuple[float, float]:
        """The shortest and longest shot: the director's, else a music video's usual."""
        return self.director.shot_seconds if self.director else MUSIC_VIDEO_SHOT_SECONDS

    def cuts(self) -> list[float]:
        """Where a music video's scenes end, on its track's beats (no more than MAX_SCENES)."""
        shortest, longest = self.shot_seconds
        shortest = max(shortest, self.track.seconds / MAX_SCENES)
        return self.track.cuts(shortest, max(shortest, longest))

    @property
    def drafted_scenes(self) -> int:
        """How many scenes a planner writes: a music video's, one per cut; an ad's, before
        the end card added after them."""
        if self.track is not None:
            return len(self.cuts())
        if self.ad is None:
            return self.scenes
        fitting = int((self.ad.seconds - AD_END_CARD_SECONDS) // AD_SHOT_SECONDS)
        return max(1, min(self.scenes - 1, fitting))

    @field_validator("language")
    @classmethod
    def _detected_and_readable(cls, tag: str | None, info) -> str | None:
        """None: detected from the script, or the topic (once they are valid: fields are
        validated in order). A language whose voice cannot read the text's script would spell
        it letter by letter."""
        ad = info.data.get("ad")
        text = (info.data.get("script") or info.data.get("topic")
                or (f"{ad.product.name}. {ad.cta}" if ad else ""))
        if tag is None:
            return detect(text) if text.strip() else None
        written = unreadable(text, language(tag))
        if written:
            source = "script" if info.data.get("script") else "topic"
            raise ValueError(f"the {language(tag).described} voice cannot read the {source}'s "
                             f"{written} script (leave the language out to detect it)")
        return tag

    @model_validator(mode="after")
    def _topic_or_script(self) -> VideoRequest:
        if not (self.topic or self.script or self.ad):
            raise ValueError("give a topic or a script")
        _one_mode(self.ad, self.track)
        _reject_duplicates("characters", "id", [c.id for c in self.characters])
        _reject_duplicates("locations", "id", [p.id for p in self.locations])
        if self.script:
            from tasks.script import script_scenes

            # Refused now: a line naming no one, or a script with nothing to say.
            script_scenes(self.script, self.characters)
        return self


class Takes(_Strict):
    """Which take of a scene's keyframe, clip and speech it uses (take 1: the first made). The
    take is part of its node's key: a new take is generated once and every take stays stored."""

    image: int = Field(1, ge=1, le=MAX_TAKES)
    clip: int = Field(1, ge=1, le=MAX_TAKES)
    speech: int = Field(1, ge=1, le=MAX_TAKES)


TAKE_PARAMS = ("take", "attempt")  # in a node's params for its key, never sent to a provider


def take_params(take: int, seed: int | None = None, attempt: int = 1) -> dict:
    """What a take, and an attempt at it after a failed gate (tasks/gates.py), add to their
    node's params: nothing for the first attempt at take 1 (so a storyboard without takes keeps
    its keys), else the take and attempt and, for a provider that takes one, their own seed."""
    added = {name: number for name, number in (("take", take), ("attempt", attempt))
             if number > 1}
    if added and seed is not None:
        added["seed"] = take_seed(seed, take, attempt)
    return added


def take_seed(seed: int, take: int, attempt: int = 1) -> int:
    return (seed + (take - 1) * 1_000_003 + (attempt - 1) * 7_919) % 2**31


class Trim(_Strict):
    """The part of a scene's clip (as generated) that is shown, in seconds into the clip."""

    start: float = Field(ge=0, le=MAX_SCENE_SECONDS)
    end: float = Field(gt=0, le=MAX_SCENE_SECONDS)

    @model_validator(mode="after")
    def _long_enough(self) -> Trim:
        if self.end - self.start < MIN_TRIM_SECONDS:
            raise ValueError(f"end must be at least {MIN_TRIM_SECONDS} s after start")
        return self

    @property
    def bounds(self) -> tuple[float, float]:
        return self.start, self.end


class Scene(_Strict):
    """One shot. `id` is stable: it never changes when scenes are reordered or edited."""

    id: str = Field(pattern=ID_PATTERN)
    order: int = Field(ge=0)
    # None in a music video's scene (the track plays) or an ad's without a voice-over.
    lines: list[Line] = Field(default_factory=list, max_length=MAX_LINES)
    visual_prompt: Text(MAX_LINE_CHARS)
    # The scene's idea in a few words, not its narration; None: no words on its picture.
    on_screen_text: Text(MAX_ON_SCREEN_CHARS, blank_ok=True) | None = None
    camera: CameraMotion = CameraMotion.zoom_in
    # How long a clip to ask for; on screen, a scene lasts its speech plus the settings' pad.
    duration: float = Field(gt=0, le=MAX_SCENE_SECONDS, description="Clip length in seconds")
    cast: list[Annotated[str, Field(pattern=ID_PATTERN)]] = Field(
        default_factory=list, max_length=MAX_CAST, description="Character ids on screen")
    location: str | None = Field(None, pattern=ID_PATTERN, description="A location id")
    takes: Takes = Takes()
    trim: Trim | None = None  # None: the clip from its start, as long as the scene
    # How it is shot: the router sends each scene's clip to the model that suits it.
    shot: ShotSize = ShotSize.MS
    intensity: float = Field(0.5, ge=0, le=1, description="How strong the emotion or action")
    physics: bool = Field(False, description="Action whose physics must look right: liquids, "
                          "falls, collisions")
    product: bool = Field(False, description="Shows the ad's product (drawn from its pictures)")
    lipsync: bool = Field(True, description="Sync the lips of who speaks or sings in it on "
                          "screen")

    @field_validator("on_screen_text")
    @classmethod
    def _blank_is_none(cls, text: str | None) -> str | None:
        return text or None

    @property
    def narration(self) -> str:
        return " ".join(line.text for line in self.lines)


class Storyboard(_Strict):
    """The plan a video is rendered from. Edit it and render again: only what changed is redone."""

    title: Text(MAX_TITLE_CHARS)
    style: Style = "documentary"
    aspect: Aspect = Aspect.portrait
    # None: each speech provider's voice for the language; a voice given is kept.
    voice: Voice | None = None
    language: LanguageTag = "en"
    music: bool = True
    seed: int = Field(0, ge=0, le=2**31 - 1)
    # The bible's profiles the scenes use, embedded whole: a render needs nothing else.
    characters: list[Character] = Field(default_factory=list, max_length=50)
    locations: list[Location] = Field(default_factory=list, max_length=50)
    # A director's look, embedded whole as the profiles are; None: the style's own.
    director: DirectorLook | None = None
    ad: Ad | None = None  # an ad's product and call to action
    track: Track | None = None  # a music video's
    scenes: list[Scene] = Field(min_length=1, max_length=MAX_SCENES)

    @model_validator(mode="after")
    def _consistent(self) -> Storyboard:
        _reject_duplicates("scenes", "id", [s.id for s in self.scenes])
        _reject_duplicates("scenes", "order", [s.order for s in self.scenes])
        # Characters and locations share one id space: both name reference nodes (ref-<id>).
        _reject_duplicates("characters and locations", "id",
                           [c.id for c in self.characters] + [p.id for p in self.locations])
        _one_mode(self.ad, self.track)
        if PRODUCT_ID in {c.id for c in self.characters} | {p.id for p in self.locations}:
            raise ValueError(f"{PRODUCT_ID!r} names an ad's product: give the profile another id")
        characters, locations = {c.id for c in self.characters}, {p.id for p in self.locations}
        for scene in self.scenes:
            if not scene.lines and self.mode is Mode.explainer:
                raise ValueError(f"scene {scene.id!r}: an explainer's scene says something: "
                                 "give it a line")
            if scene.product and self.ad is None:
                raise ValueError(f"scene {scene.id!r}: shows a product, but this is no ad")
            for member in scene.cast:
                if member not in characters:
                    raise ValueError(f"scene {scene.id!r}: cast {member!r} is not a character "
                                     "of this storyboard")
            if scene.location is not None and scene.location not in locations:
                raise ValueError(f"scene {scene.id!r}: location {scene.location!r} is not a "
                                 "location of this storyboard")
            for number, line in enumerate(scene.lines, 1):
                if line.speaker != NARRATOR and line.speaker not in scene.cast:
                    raise ValueError(f"scene {scene.id!r} line {number}: speaker "
                                     f"{line.speaker!r} is neither 'narrator' nor in the "
                                     "scene's cast")
        return self

    def ordered_scenes(self) -> list[Scene]:
        return sorted(self.scenes, key=lambda scene: scene.order)

    def scene(self, scene_id: str) -> Scene:
        return next(s for s in self.scenes if s.id == scene_id)

    def character(self, character_id: str) -> Character:
        return next(c for c in self.characters if c.id == character_id)

    def location(self, location_id: str) -> Location:
        return next(p for p in self.locations if p.id == location_id)

    def subject(self, subject_id: str) -> Subject:
        """A character, a location or the ad's product (they share one id space)."""
        products = [self.ad.product] if self.ad else []
        return next(s for s in [*self.characters, *self.locations, *products]
                    if s.id == subject_id)

    def drawn_from(self, scene: Scene) -> list[Subject]:
        """Who, what and where a scene's picture is drawn from, in the one order every prompt
        and reference list uses: its cast, the product, then its location."""
        return [*map(self.character, scene.cast),
                *([self.ad.product] if scene.product and self.ad else []),
                *([self.location(scene.location)] if scene.location else [])]

    def voiced(self, scene: Scene) -> list[str]:
        """Who speaks or sings on screen in `scene` (whose lips are synced): its cast members
        who say a line, or a music video's singer (the cast's first) where a line of the song
        is sung over it (all through it when the lyrics have no timings)."""
        if self.track is None:
            return list(dict.fromkeys(line.speaker for line in scene.lines
                                      if line.speaker in scene.cast))
        singer = self.characters[0].id if self.characters else None
        sung = self.track.sung_over(*self.spans()[scene.id])
        return [singer] if singer in scene.cast and sung else []

    @property
    def mode(self) -> Mode:
        return mode_of(self.ad, self.track)

    @property
    def timed(self) -> bool:
        """Whether each scene lasts its duration exactly (a music video's cuts fall on its
        beats, an ad fills its slot), rather than its narration plus a pad."""
        return self.mode is not Mode.explainer

    def spans(self) -> dict[str, tuple[float, float]]:
        """Each scene's start and end in the video, by id, for a timed storyboard."""
        spans, start = {}, 0.0
        for scene in self.ordered_scenes():
            spans[scene.id] = (round(start, 6), round(start + scene.duration, 6))
            start += scene.duration
        return spans

    def end_card(self, scene: Scene) -> bool:
        """An ad's last scene: its call to action and product, set by reelflow, not generated."""
        return self.ad is not None and scene.id == self.ordered_scenes()[-1].id

    @property
    def duration(self) -> float:
        return sum(scene.duration for scene in self.scenes)


Subject = Character | Location | Product


def mode_of(ad: Ad | None, track: Track | None) -> Mode:
    """What a video with `ad` or `track` is: an ad, a music video, or else an explainer."""
    return Mode.ad if ad else Mode.music_video if track else Mode.explainer


def _one_mode(ad: Ad | None, track: Track | None) -> None:
    if ad and track:
        raise ValueError("an ad has no track and a music video no product: give one of them")


def _reject_duplicates(field: str, attribute: str, values: list) -> None:
    seen = set()
    for value in values:
        if value in seen:
            raise ValueError(f"{field} has a duplicate {attribute} {value!r}")
        seen.add(value)
