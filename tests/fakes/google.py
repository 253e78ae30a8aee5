"""A fake Google backend on FakeServer: Gemini's generateContent (storyboard text and image
replies), Vertex AI's Veo long-running operations and its multimodal embeddings, answering the
JSON the real APIs send, in the shapes google-genai parses. Successes that would be billed are
counted in `billed`.

    google = FakeGoogle(tls, video=make_mp4(tmp_path / "veo.mp4"))
    google.replies.append(text_reply("not json"))   # the next generateContent answers this
    google.outcomes.append("filtered")              # the next Veo job ends like this
    google.embeddings.append("truncated")           # the next embedding reply is cut short
    google.vectors_for[digest(png)] = [...]         # the embedding of this picture
    with google:
        GeminiPlanner({"base_url": google.url}).plan(request)
    google.billed["text"], google.calls("POST", "generateContent")

Unscripted, generateContent answers a valid storyboard with the number of scenes the prompt
asks for, or, when the request asks for IMAGE output, a PNG in the requested aspect ratio;
a Veo job is done after `polls` polls with `video` inline; an embedding is `picture_vector` of
the picture sent, so alike pictures get alike vectors.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import re
import tempfile
import uuid
from collections import Counter
from collections.abc import Callable
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw

from tasks.ffmpeg import run_ffmpeg
from tests.fakes.server import FakeServer, Request, Response, TlsCert

GENERATE = r"^/v1[a-z0-9]*/models/(?P<model>[^/:]+):generateContent$"
_MODEL = (r"^/v1beta1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
          r"/publishers/google/models/(?P<model>[^/:]+)")
PREDICT = _MODEL + r":predictLongRunning$"
FETCH = _MODEL + r":fetchPredictOperation$"
EMBED = (r"^/v1/projects/(?P<project>[^/]+)/locations/(?P<location>[^/]+)"
         r"/publishers/google/models/(?P<model>[^/:]+):predict$")
# "vectors": as asked; "missing": no prediction at all (not billed); "truncated": the reply's
# body cut in half on its way back (billed: the work was done).
EMBEDDING_OUTCOMES = ("vectors", "missing", "truncated")
DIMENSIONS = (128, 256, 512, 1408)

# "truncated": the first half of the file's bytes; "short": a whole file, half as long as asked.
VEO_OUTCOMES = ("video", "never", "error", "filtered", "gcs", "garbage", "truncated", "short")
FILTER_REASON = ("Unable to generate videos because the input image contains content that "
                 "violates usage guidelines. Support codes: 17301594")
VIDEO_RESPONSE_TYPE = "type.googleapis.com/cloud.ai.large_models.vision.GenerateVideoResponse"
# What Gemini's image model returns per aspect ratio, whatever size the caller wants.
IMAGE_SIZES = {"1:1": (1024, 1024), "9:16": (768, 1344), "16:9": (1344, 768)}


def make_png(size: tuple[int, int], color: str = "#457b9d") -> bytes:
    """A picture of one colour with a pale disc in it (an image model never answers with a
    single colour; the gate would send that back)."""
    picture = Image.new("RGB", size, color)
    width, height = size
    ImageDraw.Draw(picture).ellipse((width // 4, height // 4, width * 3 // 4, height * 3 // 4),
                                    fill="#f1faee")
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return buffer.getvalue()


def make_mp4(path: Path, seconds: int = 4, size: tuple[int, int] = (160, 284)) -> bytes:
    """A real H.264 test-pattern video, as Veo would return (smaller)."""
    run_ffmpeg(["-f", "lavfi", "-i", f"testsrc=duration={seconds}:size={size[0]}x{size[1]}:rate=24",
                "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path)],
               what="make the fake Veo video")
    return path.read_bytes()


@cache
def pan_clip(picture: bytes, seconds: float, fps: int = 24, size: tuple[int, int] = (160, 284)
             ) -> bytes:
    """A clip of `picture` with the camera drifting across it, as an image-to-video model keeps
    its input: the picture's colours in every frame, and no frame held still for long."""
    width, height = size
    with tempfile.TemporaryDirectory() as folder:
        still, clip = Path(folder) / "input.png", Path(folder) / "clip.mp4"
        still.write_bytes(picture)
        run_ffmpeg(["-loop", "1", "-framerate", str(fps), "-t", f"{seconds}", "-i", str(still),
                    "-vf", f"scale={width * 5 // 4}:{height * 5 // 4}:force_original_aspect_ratio="
                    f"increase,crop={width}:{height}:x='(iw-ow)*t/{seconds}':y='(ih-oh)/2'",
                    "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(clip)],
                   what="animate the fake's input picture")
        return clip.read_bytes()


@cache
def veo_clip(seconds: int) -> bytes:
    """The video Veo answers a job of `seconds` with."""
    with tempfile.TemporaryDirectory() as folder:
        return make_mp4(Path(folder) / "veo.mp4", seconds)


def digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def picture_vector(data: bytes, length: int) -> list[float]:
    """A stand-in embedding of the picture `data`: the share of it in each of 64 colour bins,
    repeated to `length` (a multiple of 64), so cosine similarity says how alike the colours
    are: 1 for the same picture, 0 for pictures with no colour in common."""
    with Image.open(io.BytesIO(data)) as picture:
        small = picture.convert("RGB").resize((32, 32))
    shares = [0.0] * 64
    for red, green, blue in small.getdata():
        shares[red // 64 * 16 + green // 64 * 4 + blue // 64] += 1 / 32 ** 2
    return shares * (length // 64)


def embedding(data: bytes, length: int, scripted: dict[str, list]) -> list:
    """What a fake embeds the picture `data` as: the vector `scripted` for its digest (any
    value, to play a model gone wrong), else its `picture_vector`."""
    key = digest(data)
    return scripted[key] if key in scripted else picture_vector(data, length)


def inline_images(request: Request) -> list[bytes]:
    """The pictures a generateContent request carried, decoded. The SDK sends URL-safe
    base64 (as proto3 JSON allows), the API accepts either alphabet."""
    return [base64.urlsafe_b64decode(part["inlineData"]["data"].replace("+", "-").replace("/", "_"))
            for content in request.json()["contents"] for part in content["parts"]
            if "inlineData" in part]


def prompt_text(request: Request) -> str:
    return "\n".join(part["text"] for content in request.json()["contents"]
                     for part in content["parts"] if "text" in part)


# Scripted generateContent replies ----------------------------------------------------------


def text_reply(text: str, prompt_tokens: int = 50, thoughts_tokens: int = 12) -> dict:
    return {
        "candidates": [{"content": {"parts": [{"text": text}], "role": "model"},
                        "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": prompt_tokens,
                          "candidatesTokenCount": len(text.split()),
                          "thoughtsTokenCount": thoughts_tokens,
                          "totalTokenCount": prompt_tokens + len(text.split()) + thoughts_tokens},
        "modelVersion": "gemini-2.5-flash", "responseId": uuid.uuid4().hex[:22],
    }


def image_reply(png: bytes) -> dict:
    return {
        "candidates": [{"content": {"parts": [{"inlineData": {
            "mimeType": "image/png", "data": base64.b64encode(png).decode()}}], "role": "model"},
            "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 1290,
                          "totalTokenCount": 1310},
        "modelVersion": "gemini-2.5-flash-image", "responseId": uuid.uuid4().hex[:22],
    }


def blocked_prompt(reason: str = "PROHIBITED_CONTENT") -> dict:
    """The prompt itself was refused: no candidates at all."""
    return {"promptFeedback": {"blockReason": reason},
            "usageMetadata": {"promptTokenCount": 20, "totalTokenCount": 20},
            "modelVersion": "gemini-2.5-flash"}


def empty_candidate(finish_reason: str = "SAFETY") -> dict:
    """A candidate stopped by a filter before it had any content."""
    return {"candidates": [{"finishReason": finish_reason, "index": 0, "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH",
                 "blocked": True}]}],
            "usageMetadata": {"promptTokenCount": 20, "totalTokenCount": 20},
            "modelVersion": "gemini-2.5-flash"}


def storyboard_json(scenes: int) -> str:
    cameras = ["zoom_in", "pan_right", "zoom_out", "pan_left", "static"]
    return json.dumps({"title": "A fake storyboard", "scenes": [
        {"narration": f"Scene {i + 1} says one clear thing.",
         "visual_prompt": f"A calm landscape, view {i + 1}", "on_screen_text": f"Thing {i + 1}",
         "camera": cameras[i % len(cameras)], "duration": 4.0}
        for i in range(scenes)]})


def _error(code: int, status: str, message: str) -> Response:
    return Response.json({"error": {"code": code, "message": message, "status": status}}, code)


class FakeGoogle:
    def __init__(self, tls: TlsCert, *, video: bytes | None = None, polls: int = 2):
        self.server = FakeServer(tls)
        self.url = self.server.url
        self.replies: list[dict] = []  # raw generateContent bodies, answered first
        self.outcomes: list[str] = []  # how the next Veo jobs end: one of VEO_OUTCOMES
        self.video = video  # what every Veo job answers; None: a clip of the asked length
        self.polls = polls
        self.hold = False  # True: Veo jobs stay running however often they are polled
        self.billed: Counter[str] = Counter()  # text and image replies, Veo's video_seconds
        self.tokens = 0  # of billed text replies, as their usageMetadata counts them
        # Called with each image request before it is answered, in the server's thread: a test
        # can hold requests there to see which are in flight at once.
        self.on_image: Callable[[Request], None] | None = None
        # Veo jobs by operation name, in the order submitted: the outcome drawn for it, polls
        # left, the seconds asked, the request that submitted it, and whether it was billed.
        self.operations: dict[str, dict] = {}
        self.embeddings: list[str] = []  # how the next embedding replies go: EMBEDDING_OUTCOMES
        self.vectors_for: dict[str, list] = {}  # a picture's digest → the embedding it gets
        self.embedded: list[str] = []  # digests of the pictures embedded and billed, in order
        # How an image reply is drawn from the request's body (default: one colour and a disc).
        self.draw: Callable[[dict], bytes] | None = None
        self.animate = False  # True: Veo answers with a pan across its input picture
        self.server.route("POST", GENERATE, self._generate)
        self.server.route("POST", PREDICT, self._predict)
        self.server.route("POST", FETCH, self._fetch)
        self.server.route("POST", EMBED, self._embed)

    def __enter__(self) -> FakeGoogle:
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)

    def calls(self, method: str | None = None, pattern: str = "") -> list[Request]:
        return self.server.calls(method, pattern)

    def fail(self, method: str, pattern: str, faults: list) -> None:
        self.server.fail(method, pattern, faults)

    # Gemini API ------------------------------------------------------------------------

    def _generate(self, request: Request) -> Response:
        if not request.headers.get("x-goog-api-key"):
            return _error(403, "PERMISSION_DENIED", "Method doesn't allow unregistered callers")
        body = request.json()
        if self.replies:
            reply = self.replies.pop(0)
        elif "IMAGE" in body.get("generationConfig", {}).get("responseModalities", []):
            if self.on_image:
                self.on_image(request)
            aspect = body["generationConfig"].get("imageConfig", {}).get("aspectRatio", "1:1")
            reply = image_reply(self.draw(body) if self.draw else make_png(IMAGE_SIZES[aspect]))
        else:
            asked = re.search(r"exactly (\d+) scenes", prompt_text(request))
            reply = text_reply(storyboard_json(int(asked.group(1)) if asked else 3))
        parts = [part for candidate in reply.get("candidates", [])
                 for part in candidate.get("content", {}).get("parts", [])]
        if any("inlineData" in part for part in parts):
            self.billed["image"] += 1
        elif parts:
            self.billed["text"] += 1
            usage = reply.get("usageMetadata", {})
            self.tokens += sum(usage.get(count, 0) for count in (
                "promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount"))
        return Response.json(reply)

    # Vertex AI Veo ---------------------------------------------------------------------

    def _predict(self, request: Request) -> Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "UNAUTHENTICATED", "Request is missing required authentication")
        body = request.json()
        instance, parameters = body["instances"][0], body.get("parameters", {})
        problem = (
            "durationSeconds must be 4, 6 or 8"
            if parameters.get("durationSeconds") not in (4, 6, 8)
            else "aspectRatio must be 16:9 or 9:16" if parameters.get("aspectRatio") not in (
                "16:9", "9:16")
            else "image.bytesBase64Encoded is required" if not instance.get("image", {}).get(
                "bytesBase64Encoded")
            else None)
        if problem:
            return _error(400, "INVALID_ARGUMENT", problem)
        name = (f"projects/{request.match['project']}/locations/{request.match['location']}"
                f"/publishers/google/models/{request.match['model']}/operations/{uuid.uuid4()}")
        outcome = self.outcomes.pop(0) if self.outcomes else "video"
        assert outcome in VEO_OUTCOMES, outcome
        self.operations[name] = {"polls": self.polls, "outcome": outcome,
                                 "seconds": parameters["durationSeconds"], "request": body}
        return Response.json({"name": name})

    def _fetch(self, request: Request) -> Response:
        name = request.json().get("operationName", "")
        operation = self.operations.get(name)
        if operation is None:
            return _error(404, "NOT_FOUND", f"Operation {name} not found")
        if operation["outcome"] == "never" or self.hold or operation["polls"] > 1:
            operation["polls"] -= 1
            return Response.json({"name": name})
        done = {"name": name, "done": True}
        outcome = operation["outcome"]
        if outcome == "error":
            return Response.json({**done, "error": {
                "code": 13, "message": "Video generation failed due to an internal error."}})
        result: dict = {"@type": VIDEO_RESPONSE_TYPE, "raiMediaFilteredCount": 0}
        if outcome == "filtered":
            result.update(raiMediaFilteredCount=1, raiMediaFilteredReasons=[FILTER_REASON])
        elif outcome == "gcs":
            result["videos"] = [{"gcsUri": "gs://bucket/veo/sample_0.mp4",
                                 "mimeType": "video/mp4"}]
        else:
            seconds = operation["seconds"]
            video = {"garbage": b"not an mp4 at all",
                     "truncated": veo_clip(seconds)[:len(veo_clip(seconds)) // 2],
                     "short": veo_clip(seconds // 2)}.get(outcome) or self.video or (
                         pan_clip(base64.b64decode(operation["request"]["instances"][0]["image"][
                             "bytesBase64Encoded"]), seconds) if self.animate else veo_clip(seconds))
            result["videos"] = [{"bytesBase64Encoded": base64.b64encode(video).decode(),
                                 "mimeType": "video/mp4"}]
            if not operation.get("billed"):  # once per job, however often it is fetched
                operation["billed"] = True
                self.billed["video_seconds"] += operation["seconds"]
        return Response.json({**done, "response": result})

    # Vertex AI multimodal embeddings ---------------------------------------------------

    def _embed(self, request: Request) -> Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return _error(401, "UNAUTHENTICATED", "Request is missing required authentication")
        body = request.json()
        length = body.get("parameters", {}).get("dimension", 1408)
        if length not in DIMENSIONS:
            return _error(400, "INVALID_ARGUMENT", f"dimension must be one of {DIMENSIONS}")
        pictures = []
        for instance in body.get("instances") or []:
            try:
                data = base64.b64decode(instance["image"]["bytesBase64Encoded"], validate=True)
                with Image.open(io.BytesIO(data)) as picture:
                    picture.verify()
            except (KeyError, TypeError, ValueError, OSError):
                return _error(400, "INVALID_ARGUMENT", "Unable to decode the image")
            pictures.append(data)
        if not pictures:
            return _error(400, "INVALID_ARGUMENT", "Empty instances.")
        outcome = self.embeddings.pop(0) if self.embeddings else "vectors"
        assert outcome in EMBEDDING_OUTCOMES, outcome
        if outcome == "missing":
            return Response.json({"predictions": [], "deployedModelId": "1"})
        self.embedded += [digest(data) for data in pictures]
        self.billed["embedded_images"] += len(pictures)
        reply = Response.json({"predictions": [
            {"imageEmbedding": embedding(data, length, self.vectors_for)} for data in pictures],
            "deployedModelId": "1"})
        if outcome == "truncated":
            reply.body = reply.body[:len(reply.body) // 2]
        return reply
