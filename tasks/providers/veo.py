"""Veo clips on Vertex AI through google-genai: the keyframe set in motion by the model.

google-genai 3.x serves `generate_videos` in Vertex mode only. What it sends (base URL
`https://{location}-aiplatform.googleapis.com/` unless `base_url` is set):

    POST v1beta1/projects/{project}/locations/{location}/publishers/google/models/{model}
         :predictLongRunning
      {"instances": [{"prompt": ..., "image": {"bytesBase64Encoded": ..., "mimeType": ...}}],
       "parameters": {"sampleCount": 1, "durationSeconds": 4, "aspectRatio": "9:16", ...}}
      -> {"name": "projects/.../publishers/google/models/{model}/operations/{id}"}
    POST .../models/{model}:fetchPredictOperation  {"operationName": name}   (polled)
      -> {"name": ..., "done": true, "response": {"videos": [{"bytesBase64Encoded": ...,
          "mimeType": "video/mp4"}], "raiMediaFilteredCount": 0}}   or   {"error": {...}}

Without a `storageUri` (`output_gcs_uri`, never set here) Vertex returns the video inline.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

import google.auth
from google import genai
from google.auth.credentials import Credentials
from google.auth.exceptions import DefaultCredentialsError
from google.genai import types
from pydantic import Field

from config.secrets import MissingSecretError, redact
from tasks import jobs, stopping
from tasks.providers.base import (
    ClipAnimator, ClipRequest, ClipResult, ProviderError, TransientProviderError, Usage)
from tasks.providers.gemini import google_call, http_options
from tasks.providers.retry import with_retries
from tasks.storyboard import Aspect, CameraMotion

T = TypeVar("T")
SCOPES = ["https://www.googleapis.com/auth/cloud-platform"]


class VeoAnimator(ClipAnimator):
    """Veo animates the keyframe (image to video) for 4, 6 or 8 seconds, 16:9 or 9:16.

    Credentials are Google Cloud ones, not an API key: Application Default Credentials
    (`GOOGLE_APPLICATION_CREDENTIALS` naming a service-account key file, or
    `gcloud auth application-default login`, or the metadata server on Google Cloud), read
    when a clip is made. The project is the `project` option, else `GOOGLE_CLOUD_PROJECT`,
    else the credentials' own; `location` picks the regional endpoint. Code that holds other
    credentials (tests: a fixed token) passes them as `VeoAnimator(options, credentials=...)`.

    The job is polled every `poll_interval_s`; one that has not finished within `deadline_s`
    (submission and polling together) fails the node. Its operation name is kept in the store
    as soon as it is submitted (tasks/jobs.py): a run that stops, dies or gives up waiting
    leaves it, and the next run polls it instead of paying again, unless Vertex no longer has
    it or it failed. The clip node re-encodes what it returns
    to the request's size and frame rate, without audio (tasks/clips.py).
    """

    name = "veo"
    version = 1
    durations = (4.0, 6.0, 8.0)
    aspects = frozenset({Aspect.landscape, Aspect.portrait})
    transport_options = ClipAnimator.transport_options | {"project", "location"}

    class Options(ClipAnimator.Options):
        model: str = "veo-3.0-fast-generate-001"
        project: str | None = None
        location: str = "us-central1"
        poll_interval_s: float = Field(10.0, gt=0)
        # Veo 3 makes a soundtrack unless told not to; reelflow drops it. None leaves the
        # parameter out, for models that do not take it (Veo 2).
        generate_audio: bool | None = False

    def __init__(self, options: dict | None = None, *, credentials: Credentials | None = None):
        super().__init__(options)
        self._credentials = credentials

    def animate(self, request: ClipRequest, workdir: Path) -> ClipResult:
        deadline = time.monotonic() + self.options.deadline_s
        duration = self.fit_duration(request.duration)
        source = types.GenerateVideosSource(
            prompt=_prompt(request),
            image=types.Image(image_bytes=request.image.read_bytes(), mime_type="image/png"))
        config = types.GenerateVideosConfig(
            number_of_videos=1, duration_seconds=int(duration),
            aspect_ratio=self.fit_aspect(request.aspect).value,
            generate_audio=self.options.generate_audio)
        client, credentials = self._client()
        with client:
            # Read when an error is raised: the SDK refreshes the token during the first call.
            token = lambda: getattr(credentials, "token", None)  # noqa: E731
            operation = self._resumed(client, deadline, token)
            if operation is None:
                operation = self._call(lambda: client.models.generate_videos(
                    model=self.model, source=source, config=config), deadline, token)
                jobs.submitted(operation.name)
            while not operation.done:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ProviderError(f"{self.name}: operation {operation.name} did not "
                                        f"finish within {self.options.deadline_s:g}s; it is "
                                        "kept, and the next run waits for it again")
                stopping.wait(min(self.options.poll_interval_s, left))
                operation = self._poll(client, operation, token)
        try:
            video = self._video(operation)
        except ProviderError:
            jobs.gone()
            raise
        clip = workdir / "veo.mp4"
        clip.write_bytes(video)
        return ClipResult(video=clip, usage=Usage(video_seconds=duration))

    def _resumed(self, client: genai.Client, deadline: float,
                 token: Callable[[], str | None]) -> types.GenerateVideosOperation | None:
        """The operation an earlier run submitted for this node, unless Vertex no longer has it
        or it failed: then None, and a new one is submitted."""
        name = jobs.pending()
        if name is None:
            return None
        try:
            operation = self._call(lambda: client.operations.get(
                types.GenerateVideosOperation(name=name)), deadline, token)
        except ProviderError as error:
            if error.status != 404:
                raise
            jobs.gone()
            return None
        if operation.done and operation.error:
            jobs.gone()
            return None
        return operation

    def _poll(self, client: genai.Client, operation: types.GenerateVideosOperation,
              token: Callable[[], str | None]) -> types.GenerateVideosOperation:
        """The operation as Vertex has it now. A poll that fails transiently leaves it as it
        was, polled again while the deadline allows (as Replicate's are): polls cost nothing,
        and giving up on a job Veo may have finished, and billed, would pay a fallback too."""
        try:
            return google_call(self.name, lambda: client.operations.get(operation))
        except TransientProviderError:
            return operation
        except ProviderError as error:
            raise ProviderError(redact(str(error), token() or ""), error.status) from None

    def unavailable(self) -> str | None:
        """No Google Cloud credentials or project: Veo cannot run (an API key is not enough)."""
        try:
            self._credentials_and_project()
        except MissingSecretError as error:
            return str(error)
        return None

    def _client(self) -> tuple[genai.Client, Credentials]:
        credentials, project = self._credentials_and_project()
        client = genai.Client(vertexai=True, project=project, location=self.options.location,
                              credentials=credentials, http_options=http_options(self.options))
        return client, credentials

    def _credentials_and_project(self) -> tuple[Credentials, str]:
        credentials, project = self._credentials, None
        if credentials is None:
            try:
                credentials, project = google.auth.default(scopes=SCOPES)
            except DefaultCredentialsError as error:
                raise MissingSecretError(
                    f"{self.name}: no Google Cloud credentials: set GOOGLE_APPLICATION_CREDENTIALS"
                    f" or run `gcloud auth application-default login` ({error})") from None
        project = self.options.project or os.environ.get("GOOGLE_CLOUD_PROJECT") or project
        if not project:
            raise MissingSecretError(
                f"{self.name}: no Google Cloud project: set GOOGLE_CLOUD_PROJECT or the "
                "`project` option")
        return credentials, project

    def _call(self, call: Callable[[], T], deadline: float,
              token: Callable[[], str | None]) -> T:
        """One API call under the retry policy, within what is left of the node's time; an
        error never quotes the access token."""
        left = max(deadline - time.monotonic(), 0.001)
        try:
            return with_retries(lambda: google_call(self.name, call),
                                attempts=self.options.attempts, deadline_s=left)
        except ProviderError as error:
            raise ProviderError(redact(str(error), token() or ""), error.status) from None

    def _video(self, operation: types.GenerateVideosOperation) -> bytes:
        if operation.error:
            raise ProviderError(f"{self.name}: operation {operation.name} failed: "
                                f"{operation.error.get('message', operation.error)}")
        result = operation.response
        videos = [g.video for g in (result.generated_videos or []) if g.video] if result else []
        if not videos:
            if result and result.rai_media_filtered_count:
                reasons = "; ".join(result.rai_media_filtered_reasons or []) or "no reason given"
                raise ProviderError(f"{self.name}: the video was blocked by the safety filter "
                                    f"(raiMediaFiltered): {reasons}")
            raise ProviderError(f"{self.name}: operation {operation.name} returned no video")
        if not videos[0].video_bytes:
            # Only with a storageUri, which reelflow never sets: the SDK cannot fetch gs://.
            raise ProviderError(f"{self.name}: the video was not returned inline "
                                f"({videos[0].uri}); leave the output storage unset")
        return videos[0].video_bytes


def _prompt(request: ClipRequest) -> str:
    camera = ("a still camera" if request.motion is CameraMotion.static
              else f"a slow {request.motion.value.replace('_', ' ')}")
    return f"{request.prompt}\nAnimate this picture with gentle motion and {camera}.".strip()
