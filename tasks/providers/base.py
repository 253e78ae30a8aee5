"""One abstract class per modality. A backend implements exactly one method of one of them.

A provider declares what it can do as class attributes (capabilities), takes its own
pydantic `Options`, and carries a `version` to bump whenever the same request would
produce different output: the version is part of every cache key it serves.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from enum import Enum
from pathlib import Path
from typing import ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from config.secrets import declare, present
from tasks.storyboard import Aspect, CameraMotion, Storyboard, VideoRequest


class Modality(str, Enum):
    planner = "planner"
    speech = "speech"
    image = "image"
    video = "video"
    embedding = "embedding"
    lipsync = "lipsync"

    @property
    def label(self) -> str:
        """What a user calls this modality's work."""
        return {"planner": "plans", "speech": "voices", "image": "pictures",
                "video": "clips", "embedding": "shot checks",
                "lipsync": "lip-sync"}[self.value]


class Usage(BaseModel):
    """What a call consumed, in the units the price table charges for."""

    characters: int = 0
    images: int = 0
    video_seconds: float = 0.0
    tokens: int = 0


class ProviderError(RuntimeError):
    """A provider could not produce a valid result: permanent, never retried, never cached.
    `status` is the HTTP status it answered with, when it answered one."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


class TransientProviderError(ProviderError):
    """A failure worth retrying (429, 5xx, timeout, reset connection), after `retry_after` s
    when the provider said so."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class BrokenOutput(TransientProviderError):
    """A reply that is not what was asked: malformed JSON, a picture or clip cut short, audio
    shorter than its words. Retried like a transient failure, never stored; `usage` is what the
    provider billed for it (it did the work), so the run's cost says what was really spent."""

    def __init__(self, message: str, usage: Usage | None = None):
        super().__init__(message)
        self.usage = usage or Usage()


class Provider(ABC):
    name: ClassVar[str]
    modality: ClassVar[Modality]
    version: ClassVar[int] = 1
    needs_key: ClassVar[str | None] = None  # the environment variable holding its key: any name
    # Options that decide how to reach the provider, not what it makes: kept out of keys.
    transport_options: ClassVar[frozenset[str]] = frozenset(
        {"model", "base_url", "timeout_s", "deadline_s", "attempts", "poll_interval_s"})

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = "default"
        base_url: str | None = None  # a gateway, proxy or regional endpoint
        timeout_s: float = Field(120.0, gt=0)  # one network call
        deadline_s: float = Field(600.0, gt=0)  # the whole node, retries and polling included
        attempts: int = Field(4, ge=1, le=10)  # calls per node, first try included

    def __init__(self, options: dict | None = None):
        self.options = self.Options(**(options or {}))
        if self.needs_key:
            declare(self.needs_key)  # redacted from every message, whatever its name

    @property
    def model(self) -> str:
        return self.options.model

    def unavailable(self) -> str | None:
        """Why this provider cannot run here (a key or credentials missing), or None."""
        if self.needs_key and not present(self.needs_key):
            return f"{self.name}: {self.needs_key} is not set (put it in the environment or .env)"
        return None

    def params(self) -> dict:
        """Options that shape the output; they enter the cache key."""
        return self.options.model_dump(exclude=set(self.transport_options))


# Planner ---------------------------------------------------------------------------


class PlanResult(BaseModel):
    storyboard: Storyboard
    usage: Usage = Field(default_factory=Usage)
    # What the planner changed in the model's reply to fit the request, or what it could not
    # do (the offline planner's outline of a topic is a placeholder), one line each.
    adjustments: list[str] = Field(default_factory=list)


class Planner(Provider):
    modality = Modality.planner

    @abstractmethod
    def plan(self, request: VideoRequest) -> PlanResult: ...


# Speech ----------------------------------------------------------------------------


class SpeechRequest(BaseModel):
    text: str
    voice: str
    language: str


class WordTiming(BaseModel):
    """A spoken word, `text` exactly as written in the request, times in seconds."""

    text: str
    start: float
    end: float


class SpeechResult(BaseModel):
    wav: bytes  # 16-bit PCM mono WAV
    words: list[WordTiming]
    usage: Usage = Field(default_factory=Usage)


class SpeechSynthesizer(Provider):
    modality = Modality.speech
    returns_word_timings: ClassVar[bool] = True
    # False: it spells Japanese kanji out instead of reading them; it is given their kana.
    reads_kanji: ClassVar[bool] = True

    @abstractmethod
    def synthesize(self, request: SpeechRequest) -> SpeechResult: ...

    def speaks(self, voice: str, language: str) -> bool | None:
        """Whether `voice` speaks the language tagged `language`; None: this provider cannot
        tell (a cloud voice id)."""
        return None

    def speaking_voice(self, voice: str | None, language: str) -> str:
        """The voice that says a line in `language`: `voice`, else this provider's own voice
        for the language."""
        return voice or self.default_voice(language)

    @abstractmethod
    def default_voice(self, language: str) -> str: ...


# Image -----------------------------------------------------------------------------


class ImageReference(BaseModel):
    """A picture the result must stay consistent with: a character's, a location's or an
    ad's product's."""

    path: Path  # a PNG
    subject: Literal["character", "location", "product"]
    name: str


class ImageRequest(BaseModel):
    prompt: str
    text: str | None = None
    style: str
    width: int
    height: int
    seed: int
    aspect: Aspect = Aspect.portrait
    # A director's look's colours, in place of the style's (a model reads them in the prompt).
    palette: list[str] | None = None
    # The scene's cast, then its location; only providers that declare
    # `accepts_reference_images` get any.
    references: list[ImageReference] = Field(default_factory=list)


class ImageResult(BaseModel):
    png: bytes
    usage: Usage = Field(default_factory=Usage)


class ImageGenerator(Provider):
    modality = Modality.image
    accepts_reference_images: ClassVar[bool] = False
    # Whether it draws `ImageRequest.text` (the scene's on-screen text) on its picture. False:
    # it is never sent it, so the text is no part of its keys and editing it redraws nothing.
    draws_text: ClassVar[bool] = True

    @abstractmethod
    def generate(self, request: ImageRequest) -> ImageResult: ...


# Video -----------------------------------------------------------------------------


class ClipRequest(BaseModel):
    image: Path  # the keyframe, a PNG at the output size
    prompt: str = ""  # the scene's visual prompt, for models that animate from text too
    motion: CameraMotion
    duration: float  # one the provider supports: see ClipAnimator.fit_duration
    width: int
    height: int
    fps: int
    aspect: Aspect  # one the provider supports: see ClipAnimator.fit_aspect


class ClipResult(BaseModel):
    # A video written into the request's work folder; the clip node re-encodes it to the
    # request's size and frame rate when it is not already so.
    video: Path
    usage: Usage = Field(default_factory=Usage)


class ClipAnimator(Provider):
    """Clip lengths and shapes a model cannot make are declared here; the pipeline asks for
    the nearest it can, and compose holds the last frame or trims to the scene's length, and
    crops to the video's shape."""

    modality = Modality.video
    durations: ClassVar[tuple[float, ...] | None] = None  # the only lengths it makes; None: any
    # False: the model picks its clips' length itself, so a clip is not held to the asked one.
    exact_length: ClassVar[bool] = True
    uses_prompt: ClassVar[bool] = True  # False: the visual prompt does not shape its clips
    # False: it moves a camera over the keyframe, so a static camera makes a still (which the
    # gate does not call frozen).
    animates: ClassVar[bool] = True
    max_duration: ClassVar[float | None] = None
    aspects: ClassVar[frozenset[Aspect]] = frozenset(Aspect)

    def fit_duration(self, target: float) -> float:
        if self.durations:
            longer = [d for d in self.durations if d >= target]
            return min(longer) if longer else max(self.durations)
        return min(target, self.max_duration) if self.max_duration else target

    def fit_aspect(self, aspect: Aspect) -> Aspect:
        if aspect in self.aspects:
            return aspect
        return min(self.aspects, key=lambda a: list(Aspect).index(a))  # same answer every run

    @abstractmethod
    def animate(self, request: ClipRequest, workdir: Path) -> ClipResult: ...


# Image embedding -------------------------------------------------------------------


class EmbeddingRequest(BaseModel):
    images: list[Path] = Field(min_length=1)  # PNGs


class EmbeddingResult(BaseModel):
    vectors: list[list[float]]  # one per image, in order; any length, the same for all
    usage: Usage = Field(default_factory=Usage)


def checked_vectors(provider: str, vectors: list, count: int) -> list[list[float]]:
    """`vectors` when they are `count` non-empty lists of finite numbers, all as long: else
    the reply is broken, and billed for `count` pictures."""
    def broken(what: str) -> BrokenOutput:
        return BrokenOutput(f"{provider}: {what}", Usage(images=count))

    if len(vectors) != count:
        raise broken(f"{len(vectors)} vectors for {count} pictures")
    for index, vector in enumerate(vectors):
        if not isinstance(vector, list) or not vector or not all(
                isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                for x in vector):
            raise broken(f"vector {index + 1} is not a list of numbers")
    lengths = sorted({len(vector) for vector in vectors})
    if len(lengths) > 1:
        raise broken(f"vectors of different lengths ({', '.join(map(str, lengths))})")
    return [[float(x) for x in vector] for vector in vectors]


class ImageEmbedder(Provider):
    """Pictures as vectors whose cosine similarity says how alike they look: the identity gate
    (tasks/gates.py) compares each shot with the references of the characters in it."""

    modality = Modality.embedding
    # The threshold judges the scores; it does not change them, so it stays out of keys and
    # changing it pays for no embedding again.
    transport_options = Provider.transport_options | {"threshold"}

    class Options(Provider.Options):
        # A shot whose best similarity to a character's references is under this fails.
        threshold: float = Field(0.82, ge=0, le=1)

    @abstractmethod
    def embed(self, request: EmbeddingRequest) -> EmbeddingResult: ...

    def similarity(self, shot: list[float], reference: list[float]) -> float:
        """How much `shot` looks like `reference`, 0-1: their cosine similarity (clipped)."""
        dot = sum(a * b for a, b in zip(shot, reference))
        norms = math.sqrt(sum(a * a for a in shot) * sum(b * b for b in reference))
        return max(0.0, min(1.0, dot / norms)) if norms else 0.0


# Lip-sync ----------------------------------------------------------------------------


class LipsyncRequest(BaseModel):
    clip: Path  # silent H.264 at the video's size and frame rate
    audio: Path  # 16-bit PCM WAV (a track's channels): what plays over the clip from its start
    fps: int


class LipsyncResult(BaseModel):
    """A syncer moves the lips of the faces in the clip (`video`, as long as the audio), or, in
    a clip without faces, the mouths of the sprites drawn over it (`mouth`: when they are open,
    in seconds from the clip's start)."""

    video: Path | None = None
    mouth: list[tuple[float, float]] | None = None
    usage: Usage = Field(default_factory=Usage)

    @model_validator(mode="after")
    def _one_of_them(self) -> LipsyncResult:
        if (self.video is None) == (self.mouth is None):
            raise ValueError("a lip-sync result is a video or a mouth's timing, one of them")
        return self


class LipSyncer(Provider):
    """Makes the characters who speak or sing on screen move their lips with the audio."""

    modality = Modality.lipsync

    @abstractmethod
    def sync(self, request: LipsyncRequest, workdir: Path) -> LipsyncResult: ...
