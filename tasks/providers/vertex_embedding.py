"""Shot checks on Vertex AI: pictures as vectors from Google's multimodal embedding model.

One picture per request, as Google's own SDK sends them (vertexai's MultiModalEmbeddingModel
puts one instance in each `predict`), to `https://{location}-aiplatform.googleapis.com` unless
`base_url` is set:

    POST v1/projects/{project}/locations/{location}/publishers/google/models/{model}:predict
      Authorization: Bearer {access token}
      {"instances": [{"image": {"bytesBase64Encoded": ..., "mimeType": "image/png"}}],
       "parameters": {"dimension": 1408}}
      -> {"predictions": [{"imageEmbedding": [1408 floats]}], "deployedModelId": ...}
    An error: {"error": {"code": 400, "message": ..., "status": "INVALID_ARGUMENT"}}

Each request is retried on its own (429, 5xx, timeouts, a reply cut short), within what is left
of the node's `deadline_s`. The model shrinks every picture to 512x512 itself.
"""

from __future__ import annotations

import base64
import time
from pathlib import Path
from typing import Any, Literal

import google.auth.transport.requests
import httpx
from google.auth.credentials import Credentials

from config.secrets import redact
from tasks.providers.base import (
    BrokenOutput, EmbeddingRequest, EmbeddingResult, ImageEmbedder, Usage, checked_vectors)
from tasks.providers.retry import http_error, network_error, with_retries
from tasks.providers.veo import VeoAnimator


class VertexEmbedding(ImageEmbedder):
    """Credentials and project are found as Veo finds them (tasks/providers/veo.py):
    Application Default Credentials, the `project` option, else `GOOGLE_CLOUD_PROJECT`, else
    the credentials' own; tests pass theirs as `VertexEmbedding(options, credentials=...)`."""

    name = "vertex"
    version = 1
    transport_options = ImageEmbedder.transport_options | {"project", "location"}

    class Options(ImageEmbedder.Options):
        model: str = "multimodalembedding@001"
        project: str | None = None
        location: str = "us-central1"
        dimension: Literal[128, 256, 512, 1408] = 1408  # the only lengths the model makes

    def __init__(self, options: dict | None = None, *, credentials: Credentials | None = None):
        super().__init__(options)
        self._credentials = credentials

    # The same credentials, project and reasons to refuse as Veo.
    _credentials_and_project = VeoAnimator._credentials_and_project
    unavailable = VeoAnimator.unavailable

    def embed(self, request: EmbeddingRequest) -> EmbeddingResult:
        credentials, project = self._credentials_and_project()
        location = self.options.location
        base = self.options.base_url or f"https://{location}-aiplatform.googleapis.com"
        url = (f"{base.rstrip('/')}/v1/projects/{project}/locations/{location}"
               f"/publishers/google/models/{self.model}:predict")
        deadline = time.monotonic() + self.options.deadline_s
        with httpx.Client(timeout=self.options.timeout_s) as client:
            vectors = [self._embedding(client, url, credentials, path, deadline)
                       for path in request.images]
        count = len(request.images)
        return EmbeddingResult(vectors=checked_vectors(self.name, vectors, count),
                               usage=Usage(images=count))

    def _embedding(self, client: httpx.Client, url: str, credentials: Credentials, path: Path,
                   deadline: float) -> Any:
        """The `imageEmbedding` Vertex answers for the picture at `path`, as it came."""
        body = {"instances": [{"image": {
                    "bytesBase64Encoded": base64.b64encode(path.read_bytes()).decode(),
                    "mimeType": "image/png"}}],
                "parameters": {"dimension": self.options.dimension}}

        def call() -> Any:
            try:
                if not credentials.valid:  # expired, or never fetched
                    credentials.refresh(google.auth.transport.requests.Request())
                response = client.post(url, json=body,
                                       headers={"Authorization": f"Bearer {credentials.token}"})
            except Exception as error:
                mapped = network_error(self.name, error)
                if mapped is None:
                    raise
                raise mapped from None
            if response.status_code >= 400:
                raise http_error(self.name, response.status_code,
                                 redact(_message(response), credentials.token or ""),
                                 response.headers.get("retry-after"))
            try:
                [prediction] = response.json()["predictions"]
                return prediction["imageEmbedding"]
            except (ValueError, KeyError, TypeError):  # not JSON, or not one embedding
                raise BrokenOutput(f"{self.name}: the reply holds no image embedding",
                                   Usage(images=1)) from None

        return with_retries(call, attempts=self.options.attempts,
                            deadline_s=max(deadline - time.monotonic(), 0.001))


def _message(response: httpx.Response) -> str:
    """What an error reply says: Google's `error.message`, else the start of its body."""
    try:
        return str(response.json()["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return response.text[:200] or "no message"
