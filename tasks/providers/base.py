"""One abstract class per modality. A backend implements exactly one method of one of them.

A provider declares what it can do as class attributes (capabilities), takes its own
pydantic `Options`, and carries a `version` to bump whenever the same request would
produce different output: the version is part of every cache key it serves.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from enum import Enum
from pathlib import Path
from typing import ClassVar

from pydantic import BaseModel, ConfigDict, Field

from tasks.storyboard import Aspect, CameraMotion, Storyboard, VideoRequest


class Modality(str, Enum):
    planner = "planner"
    speech = "speech"
    image = "image"
    video = "video"


class Usage(BaseModel):
    """What a call consumed, in the units the price table charges for."""

    characters: int = 0
    images: int = 0
    video_seconds: float = 0.0
    tokens: int = 0


class ProviderError(RuntimeError):
    """A provider could not produce a valid result. Never cached."""


class Provider(ABC):
    name: ClassVar[str]
    modality: ClassVar[Modality]
    version: ClassVar[int] = 1
    needs_key: ClassVar[str | None] = None  # environment variable holding its secret

    class Options(BaseModel):
        model_config = ConfigDict(extra="forbid")
        model: str = "default"

    def __init__(self, options: dict | None = None):
        self.options = self.Options(**(options or {}))

    @property
    def model(self) -> str:
        return self.options.model

    def params(self) -> dict:
        """Options that shape the output; they enter the cache key."""
        return self.options.model_dump(exclude={"model"})


# Planner ---------------------------------------------------------------------------


class PlanResult(BaseModel):
    storyboard: Storyboard
    usage: Usage = Field(default_factory=Usage)


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

    @abstractmethod
    def synthesize(self, request: SpeechRequest) -> SpeechResult: ...


# Image -----------------------------------------------------------------------------


class ImageRequest(BaseModel):
    prompt: str
    style: str
    width: int
    height: int
    seed: int


class ImageResult(BaseModel):
    png: bytes
    usage: Usage = Field(default_factory=Usage)


class ImageGenerator(Provider):
    modality = Modality.image
    accepts_reference_images: ClassVar[bool] = False

    @abstractmethod
    def generate(self, request: ImageRequest) -> ImageResult: ...


# Video -----------------------------------------------------------------------------


class ClipRequest(BaseModel):
    image: Path  # the keyframe, a PNG at the output size
    motion: CameraMotion
    duration: float
    width: int
    height: int
    fps: int
    aspect: Aspect


class ClipResult(BaseModel):
    video: Path  # an H.264 mp4 without audio, written into the request's work folder
    usage: Usage = Field(default_factory=Usage)


class ClipAnimator(Provider):
    modality = Modality.video
    max_duration: ClassVar[float | None] = None
    aspects: ClassVar[frozenset[Aspect]] = frozenset(Aspect)

    @abstractmethod
    def animate(self, request: ClipRequest, workdir: Path) -> ClipResult: ...
