"""Replicate: keyframes from a text-to-image model, clips from an image-to-video model, shot
checks from a CLIP model, lip-sync from a lip-sync model.

A prediction is created once (retried by us on transient errors only: the SDK never retries a
POST) and its id kept in the store (tasks/jobs.py), then polled every `poll_interval_s` until it
ends or the node's `deadline_s` passes; one that outlives the deadline is cancelled. A run that
stops or dies while polling leaves the id: the next run polls that prediction instead of paying
for a new one, unless Replicate no longer has it or it failed. Outputs are downloaded without our token (they
live on another host). The keyframe travels inline as a data URI, so there is no upload call.

The CLIP model (krthr/clip-embeddings: openai/clip-vit-large-patch14) embeds one picture a
prediction: `{"image": data URI}` -> `{"embedding": [768 floats]}`. A request's pictures are
one prediction each, created together and polled together, their ids kept as the node's job.
(andreasjansson/clip-features takes many pictures at once, but only as http(s) URLs it
downloads itself; a data URI there is read as text.)

The lip-sync model (sync/lipsync-2) takes `video` (mp4) and `audio` (wav) files, uploaded
through the Files API (a clip is too large for a data URI), and answers the video's URL; with
`sync_mode` loop, bounce or remap it lasts as long as the audio.

replicate 1.0.7 sends its create POST with `timeout=None` (no limit at all): a request hook
puts our timeout on every request. It retries GETs (the polls) itself on 429/503/504 and cannot
be told not to without replacing its transport; a poll that still fails transiently is simply
polled again, while the deadline allows.
"""

from __future__ import annotations

import base64
import io
import time
import shutil
import urllib.parse
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import replicate
from PIL import Image
from pydantic import Field
from replicate.exceptions import ReplicateError

from config.catalog import styles
from config.secrets import secret
from tasks import jobs, stopping
from tasks.audio import seconds_of
from tasks.checks import FRAMES_OF_SLACK
from tasks.ffmpeg import MediaError, probe
from tasks.pictures import framed
from tasks.providers.base import (
    BrokenOutput, ClipAnimator, ClipRequest, ClipResult, EmbeddingRequest, EmbeddingResult,
    ImageEmbedder, ImageGenerator, ImageRequest, ImageResult, LipSyncer, LipsyncRequest,
    LipsyncResult, ProviderError, TransientProviderError, Usage, checked_vectors)
from tasks.providers.retry import http_error, network_error, with_retries
from tasks.storyboard import Aspect, CameraMotion

NAME = "replicate"
FINISHED = frozenset({"succeeded", "failed", "canceled"})
INLINE_PNG_LIMIT = 1_000_000  # bytes; a larger keyframe is sent as a JPEG


@dataclass(frozen=True)
class VideoModel:
    """What an image-to-video model takes: the field for the first frame, the lengths it
    makes, and how a length is asked for (frames at a rate, whole seconds, or not at all)."""

    image_field: str = "image"
    durations: tuple[float, ...] = (5.0,)
    length: Literal["frames", "seconds"] | None = None
    fps: int = 16
    aspects: frozenset[Aspect] = frozenset(Aspect)  # these follow the first frame's shape

    def length_input(self, duration: float) -> dict:
        if self.length == "frames":
            return {"num_frames": round(duration * self.fps), "frames_per_second": self.fps}
        if self.length == "seconds":
            return {"duration": round(duration)}
        return {}


VIDEO_MODELS = {
    "wan-video/wan-2.2-i2v-fast": VideoModel(durations=(81 / 16, 121 / 16), length="frames"),
    "kwaivgi/kling-v2.1": VideoModel(image_field="start_image", durations=(5.0, 10.0),
                                     length="seconds"),
    "bytedance/seedance-1-lite": VideoModel(durations=(5.0, 10.0), length="seconds"),
    # Veo for people with only a Replicate token: 8 s clips from a first frame.
    "google/veo-3-fast": VideoModel(durations=(8.0,), length="seconds"),
}
UNKNOWN_VIDEO_MODEL = VideoModel()  # asks for no length, expects about 5 s

MOTION_WORDS = {
    CameraMotion.static: "static camera",
    CameraMotion.zoom_in: "the camera slowly zooms in",
    CameraMotion.zoom_out: "the camera slowly zooms out",
    CameraMotion.pan_left: "the camera pans slowly to the left",
    CameraMotion.pan_right: "the camera pans slowly to the right",
    CameraMotion.pan_up: "the camera tilts slowly up",
    CameraMotion.pan_down: "the camera tilts slowly down",
}


class _Predictions:
    """Running predictions to their end and fetching what they made, shared by every kind."""

    name = NAME
    needs_key = "REPLICATE_API_TOKEN"
    options: Any

    def _predict(self, model: str, input: dict) -> tuple[Any, float]:
        """The output of a succeeded prediction, and the monotonic time the node must end by."""
        [output], deadline = self._predict_each(model, [input])
        return output, deadline

    def _predict_each(self, model: str, inputs: list[dict]) -> tuple[list[Any], float]:
        """The outputs of one prediction per input, in order, and the monotonic time the node
        must end by. All are created before any is polled, so they run side by side; the node's
        job is their ids, in order, so a run that stops leaves them all to the next."""
        token = secret("REPLICATE_API_TOKEN")
        deadline = time.monotonic() + self.options.deadline_s
        seen: dict[str, str | None] = {}  # ReplicateError drops the headers: keep Retry-After
        timeout = httpx.Timeout(self.options.timeout_s)

        def limit(request: httpx.Request) -> None:
            request.extensions["timeout"] = timeout.as_dict()

        def remember(response: httpx.Response) -> None:
            seen["retry_after"] = response.headers.get("retry-after")

        client = replicate.Client(api_token=token, base_url=self.options.base_url,
                                  timeout=timeout,
                                  event_hooks={"request": [limit], "response": [remember]})
        owner_name, _, version = model.partition(":")
        target = {"version": version} if version else {"model": owner_name}

        def create(input: dict):
            return _call(lambda: client.predictions.create(**target, input=input), token, seen)

        predictions = self._resumed(client, token, seen)
        for input in inputs[len(predictions):]:
            predictions.append(with_retries(lambda: create(input), attempts=self.options.attempts,
                                            deadline_s=max(deadline - time.monotonic(), 0.001)))
            jobs.submitted(" ".join(prediction.id for prediction in predictions))
        interval = self.options.poll_interval_s
        while running := [p for p in predictions if p.status not in FINISHED]:
            if time.monotonic() + interval > deadline:
                late = f"prediction {running[0].id} still {running[0].status}"
                for prediction in running:
                    _cancel(prediction)
                jobs.gone()
                raise ProviderError(f"{NAME}: {late} after {self.options.deadline_s:g} s; "
                                    "cancelled")
            stopping.wait(interval)
            for prediction in running:
                try:
                    _call(prediction.reload, token, seen)
                except TransientProviderError:
                    pass  # polled again, while the deadline allows
        for prediction in predictions:
            if prediction.status != "succeeded":
                jobs.gone()
                raise ProviderError(
                    f"{NAME}: prediction {prediction.id} {prediction.status}: "
                    f"{_scrub(str(prediction.error or 'no error given'), token)}"[:500])
        return [prediction.output for prediction in predictions], deadline

    def _resumed(self, client: replicate.Client, token: str, seen: dict) -> list:
        """The predictions an earlier run created for this node, in order, unless Replicate no
        longer has one of them or one failed or was cancelled: then none, and all are created
        anew."""
        resumed = []
        for earlier in (jobs.pending() or "").split():
            try:
                prediction = with_retries(
                    lambda: _call(lambda: client.predictions.get(earlier), token, seen),
                    attempts=self.options.attempts, deadline_s=self.options.deadline_s)
            except ProviderError as error:
                if error.status != 404:
                    raise
                prediction = None
            if prediction is None or prediction.status in ("failed", "canceled"):
                jobs.gone()
                return []
            resumed.append(prediction)
        return resumed

    def _download(self, output: Any, deadline: float) -> bytes:
        url = output[0] if isinstance(output, list) and output else output
        if not isinstance(url, str) or not url:
            raise ProviderError(f"{NAME}: the prediction succeeded without an output: "
                                f"{output!r}"[:300])
        if url.startswith("data:"):
            header, _, data = url.partition(",")
            try:
                return (base64.b64decode(data, validate=True) if header.endswith(";base64")
                        else urllib.parse.unquote_to_bytes(data))
            except ValueError:
                raise ProviderError(f"{NAME}: the output is a broken data URI") from None
        if not url.startswith("https://"):
            raise ProviderError(f"{NAME}: the output is not an https URL: {url[:100]}")

        def fetch() -> bytes:
            try:
                response = httpx.get(url, timeout=self.options.timeout_s, follow_redirects=True)
            except Exception as error:
                mapped = network_error(NAME, error)
                if mapped is None:
                    raise
                raise mapped from None
            if response.status_code >= 400:
                raise http_error(NAME, response.status_code, "downloading the output",
                                 response.headers.get("retry-after"))
            return response.content

        return with_retries(fetch, attempts=self.options.attempts,
                            deadline_s=max(deadline - time.monotonic(), 0.001))


class ReplicateImage(_Predictions, ImageGenerator):
    draws_text = False  # as GeminiImage: the on-screen text is shown only where it is drawn

    class Options(ImageGenerator.Options):
        model: str = "black-forest-labs/flux-schnell"  # "owner/name", or "owner/name:version"
        poll_interval_s: float = Field(2.0, gt=0)
        extra_input: dict[str, Any] = Field(default_factory=dict)  # model-specific inputs
        # The model's input that takes reference pictures (a list of data URIs), for models
        # that draw from references, e.g. "image_input" (google/nano-banana) or "input_images".
        reference_input: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]{0,63}$")

    def __init__(self, options: dict | None = None):
        super().__init__(options)
        self.accepts_reference_images = self.options.reference_input is not None

    def generate(self, request: ImageRequest) -> ImageResult:
        words = styles().get(request.style, {}).get("prompt")
        input = {"prompt": f"{request.prompt}, {words}" if words else request.prompt,
                 "aspect_ratio": request.aspect.value, "seed": request.seed,
                 "output_format": "png", **self.options.extra_input}
        if self.options.reference_input and request.references:
            input[self.options.reference_input] = [_data_uri(r.path) for r in request.references]
        output, deadline = self._predict(self.model, input)
        data = self._download(output, deadline)
        return ImageResult(png=framed(data, request.width, request.height, NAME),
                           usage=Usage(images=1))


class ReplicateAnimator(_Predictions, ClipAnimator):
    version = 2  # 2: clips are stored at the node's size and frame rate (tasks/clips.py)
    durations = VIDEO_MODELS["wan-video/wan-2.2-i2v-fast"].durations  # the default model's

    class Options(ClipAnimator.Options):
        model: str = "wan-video/wan-2.2-i2v-fast"
        poll_interval_s: float = Field(2.0, gt=0)
        extra_input: dict[str, Any] = Field(default_factory=dict)  # e.g. {"resolution": "720p"}

    def __init__(self, options: dict | None = None):
        super().__init__(options)
        self.spec = VIDEO_MODELS.get(self.model.partition(":")[0], UNKNOWN_VIDEO_MODEL)
        self.durations = self.spec.durations
        self.exact_length = self.spec is not UNKNOWN_VIDEO_MODEL
        self.aspects = self.spec.aspects

    def animate(self, request: ClipRequest, workdir: Path) -> ClipResult:
        prompt = ". ".join(part for part in (request.prompt, MOTION_WORDS[request.motion]) if part)
        input = {self.spec.image_field: _data_uri(request.image), "prompt": prompt,
                 **self.spec.length_input(request.duration), **self.options.extra_input}
        output, deadline = self._predict(self.model, input)
        video = workdir / "replicate.mp4"
        video.write_bytes(self._download(output, deadline))
        return ClipResult(video=video, usage=Usage(video_seconds=request.duration))


class ReplicateEmbedding(_Predictions, ImageEmbedder):

    class Options(ImageEmbedder.Options):
        # One picture in `image`, its features out in `embedding`: see the module's docstring.
        model: str = "krthr/clip-embeddings"
        poll_interval_s: float = Field(1.0, gt=0)  # a picture takes about a second

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        outputs, _ = self._predict_each(self.model, [{"image": _data_uri(path)}
                                                     for path in request.images])
        count = len(request.images)
        vectors = [output.get("embedding") if isinstance(output, dict) else None
                   for output in outputs]
        return EmbeddingResult(vectors=checked_vectors(NAME, vectors, count),
                               usage=Usage(images=count))


class ReplicateLipsync(_Predictions, LipSyncer):

    class Options(LipSyncer.Options):
        model: str = "sync/lipsync-2"
        poll_interval_s: float = Field(3.0, gt=0)
        # How expressive the lips may be, 0-1 (the model's `temperature`).
        temperature: float = Field(0.5, ge=0, le=1)
        active_speaker: bool = False  # sync whoever is speaking in the clip, not every face
        occlusion_detection: bool = False  # look out for hands and props before the mouth
        # A clip shorter than its audio: played forward then back (bounce), looped, or
        # stretched (remap) to the audio's length; cut_off and silence keep their own length.
        sync_mode: Literal["bounce", "loop", "remap", "cut_off", "silence"] = "bounce"
        extra_input: dict[str, Any] = Field(default_factory=dict)

    def sync(self, request: LipsyncRequest, workdir: Path) -> LipsyncResult:
        options = self.options
        # Paths, uploaded by the SDK when it creates the prediction, named as the model wants
        # its files (a stored clip's name is its digest, without an extension).
        clip = workdir / "clip.mp4"
        shutil.copyfile(request.clip, clip)
        input = {"video": clip, "audio": request.audio, "sync_mode": options.sync_mode,
                 "temperature": options.temperature,
                 # Sent only when on: a model without the input (lipsync-2-pro) refuses it.
                 **{name: True for name in ("active_speaker", "occlusion_detection")
                    if getattr(options, name)},
                 **options.extra_input}
        output, deadline = self._predict(self.model, input)
        video = workdir / "lipsync.mp4"
        video.write_bytes(self._download(output, deadline))
        seconds = seconds_of(request.audio)
        usage = Usage(video_seconds=seconds)
        if options.sync_mode in ("bounce", "loop", "remap"):  # then it lasts as long as the audio
            _as_long_as(video, seconds, request.fps, usage)
        return LipsyncResult(video=video, usage=usage)


def _as_long_as(video: Path, seconds: float, fps: int, usage: Usage) -> None:
    """A clip that decodes whole but stops before its audio is cut short: a broken output."""
    try:
        made = probe(video).duration
    except MediaError as error:
        raise BrokenOutput(f"{NAME}: the synced clip does not open: {error}", usage) from None
    if made < seconds - FRAMES_OF_SLACK / fps:
        raise BrokenOutput(f"{NAME}: the synced clip lasts {made:.2f} s, its audio "
                           f"{seconds:.2f} s", usage)


def _call(action, token: str, seen: dict):
    """`action()`, with the SDK's errors as ours: transient ones retried, none carrying the key."""
    try:
        return action()
    except ReplicateError as error:
        text = _scrub(": ".join(str(part) for part in (error.title, error.detail) if part), token)
        raise http_error(NAME, error.status or 0, text, seen.get("retry_after")) from None
    except ValueError:  # a reply that is not JSON, or not a prediction: asked again
        raise TransientProviderError(f"{NAME}: unreadable reply") from None
    except Exception as error:
        mapped = network_error(NAME, error)
        if mapped is None:
            raise
        raise mapped from None


def _cancel(prediction) -> None:
    """Stop paying for a prediction we no longer wait for; best effort."""
    try:
        prediction.cancel()
    except Exception:  # noqa: BLE001 - the deadline error that follows matters more
        pass


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def _data_uri(path: Path) -> str:
    """The keyframe inline: PNG when small, else a high-quality JPEG."""
    data, media_type = path.read_bytes(), "image/png"
    if len(data) > INLINE_PNG_LIMIT:
        with Image.open(path) as image:
            buffer = io.BytesIO()
            image.convert("RGB").save(buffer, format="JPEG", quality=92)
        data, media_type = buffer.getvalue(), "image/jpeg"
    return f"data:{media_type};base64,{base64.b64encode(data).decode()}"
