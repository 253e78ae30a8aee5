"""Gemini through google-genai with an API key: the storyboard planner and the keyframe painter.

Both call `models.generate_content`, which the SDK (3.4) sends as
`POST {base_url}/v1/models/{model}:generateContent` with the key in `x-goog-api-key`.
The SDK has no timeout and no retries unless asked: every client here gets a timeout and
leaves retries to `with_retries`, so each request is sent at most `attempts` times.
`google_call` turns the SDK's errors into ours; `veo.py` uses it too.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TypeVar

from google import genai
from google.genai import errors, types

from config.catalog import styles
from config.secrets import secret
from tasks.providers.base import (
    ImageGenerator,
    ImageRequest,
    ImageResult,
    Planner,
    PlanResult,
    Provider,
    ProviderError,
    TransientProviderError,
    Usage,
)
from tasks.providers.draft import reply_schema
from tasks.providers.planning import plan_with_one_repair
from tasks.pictures import framed
from tasks.providers.retry import http_error, network_error, with_retries
from tasks.storyboard import VideoRequest

T = TypeVar("T")
def google_call(provider: str, call: Callable[[], T]) -> T:
    """`call()`, with an HTTP error or a dropped connection raised as a ProviderError:
    transient for 429/5xx, timeouts, resets and replies that are not JSON, permanent for
    other 4xx.

    Raised `from None`: the SDK's exceptions hold the request, and its headers hold the key.
    """
    try:
        return call()
    except errors.APIError as error:
        headers = getattr(error.response, "headers", None) or {}
        raise http_error(provider, error.code or 0, error.message or error.status or "no message",
                         headers.get("retry-after")) from None
    except (errors.UnknownApiResponseError, json.JSONDecodeError):
        # A proxy's error page or a reply cut off (the SDK parses some replies itself, others
        # with json.loads): asked again, like a dropped connection.
        raise TransientProviderError(f"{provider}: unreadable reply (not JSON)") from None
    except Exception as error:
        transient = network_error(provider, error)
        if transient is None:
            raise
        raise transient from None


def http_options(options: Provider.Options) -> types.HttpOptions:
    """The base URL and a timeout per call (in ms); no `retry_options`, so the SDK tries once."""
    seconds = min(options.timeout_s, options.deadline_s)
    return types.HttpOptions(base_url=options.base_url, timeout=max(1, round(seconds * 1000)))


def gemini_client(provider: Provider) -> genai.Client:
    """A Gemini API client; the key is read here and nowhere else."""
    return genai.Client(api_key=secret(provider.needs_key),
                        http_options=http_options(provider.options))


def generate(provider: Provider, client: genai.Client, contents: list,
             config: types.GenerateContentConfig) -> types.GenerateContentResponse:
    """One `generate_content`, retried under the node's policy."""
    options = provider.options
    return with_retries(
        lambda: google_call(provider.name, lambda: client.models.generate_content(
            model=options.model, contents=contents, config=config)),
        attempts=options.attempts, deadline_s=options.deadline_s)


def why_empty(response: types.GenerateContentResponse) -> str:
    """Why a reply has no usable content, from its prompt feedback or finish reason."""
    feedback = response.prompt_feedback
    if feedback and feedback.block_reason:
        return f"the prompt was blocked ({_name(feedback.block_reason)})"
    if response.candidates and response.candidates[0].finish_reason:
        return f"finish reason {_name(response.candidates[0].finish_reason)}"
    return "the reply was empty"


def _name(value) -> str:
    return str(getattr(value, "value", value))


class GeminiPlanner(Planner):
    """Gemini writes a `DraftStoryboard` as structured JSON output (as `response_schema`: its
    OpenAPI subset has maxLength, which `response_json_schema` does not take); one repair if it
    does not validate. Usage counts the prompt, reply and thinking tokens of every call."""

    name = "gemini"
    version = 2
    needs_key = "GEMINI_API_KEY"

    class Options(Planner.Options):
        model: str = "gemini-2.5-flash"

    def plan(self, request: VideoRequest) -> PlanResult:
        usage = Usage()
        config = types.GenerateContentConfig(
            response_mime_type="application/json", response_schema=reply_schema(request),
            seed=request.seed)
        with gemini_client(self) as client:

            def ask(prompt: str) -> str:
                response = generate(self, client, [prompt], config)
                metadata = response.usage_metadata
                if metadata:  # thinking is billed as output too
                    usage.tokens += ((metadata.prompt_token_count or 0)
                                     + (metadata.candidates_token_count or 0)
                                     + (metadata.thoughts_token_count or 0))
                if not response.text:
                    raise ProviderError(f"{self.name}: no text in the reply: {why_empty(response)}")
                return response.text

            storyboard, adjustments = plan_with_one_repair(ask, request, self.name)
        return PlanResult(storyboard=storyboard, usage=usage, adjustments=adjustments)


class GeminiImage(ImageGenerator):
    """Keyframes from Gemini's image model: text to image, or image to image when the request
    carries reference pictures (sent as PNG parts after the prompt). The reply's picture is
    cropped to fill exactly the requested size."""

    name = "gemini-image"
    version = 1
    needs_key = "GEMINI_API_KEY"
    accepts_reference_images = True
    draws_text = False  # the captions say it: a model's lettering is misspelt, and moves in clips

    class Options(ImageGenerator.Options):
        model: str = "gemini-2.5-flash-image"

    def generate(self, request: ImageRequest) -> ImageResult:
        references = [types.Part.from_bytes(data=reference.path.read_bytes(),
                                            mime_type="image/png")
                      for reference in request.references]
        config = types.GenerateContentConfig(
            response_modalities=["IMAGE"], seed=request.seed,
            image_config=types.ImageConfig(aspect_ratio=request.aspect.value))
        with gemini_client(self) as client:
            response = generate(self, client, [image_prompt(request), *references], config)
        picture = _first_image(response)
        if picture is None:
            said = f"; it said {response.text[:200]!r}" if response.text else ""
            raise ProviderError(f"{self.name}: no image in the reply: {why_empty(response)}{said}")
        return ImageResult(png=framed(picture, request.width, request.height, self.name),
                           usage=Usage(images=1))


def image_prompt(request: ImageRequest) -> str:
    words = styles().get(request.style, {}).get("prompt")
    lines = [request.prompt]
    if words:
        lines.append(f"Style: {words}.")
    lines.append(f"One full-bleed picture in a {request.aspect.value} aspect ratio, "
                 "without any text or lettering.")
    if request.references:
        named = "; ".join(f"image {i} is {r.name} ({r.subject})"
                          for i, r in enumerate(request.references, 1))
        lines.append(f"Draw each character and place exactly as in its reference image: {named}.")
    return "\n".join(lines)


def _first_image(response: types.GenerateContentResponse) -> bytes | None:
    for candidate in response.candidates or []:
        for part in (candidate.content.parts if candidate.content else None) or []:
            if part.inline_data and part.inline_data.data:
                return part.inline_data.data
    return None
