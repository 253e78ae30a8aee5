"""A fake Replicate API: predictions that start, process and finish over a few polls, and
output files served back over HTTPS, as the real service and its delivery host do. A CLIP model
(one with "clip" in its name) answers `{"embedding": [768 floats]}` computed from the picture in
its `image` input, so alike pictures get alike vectors. A lip-sync model (one with "lipsync" in
its name) takes files uploaded through the Files API and answers its video, played forward and
back to the audio's length, with a black bar drawn where a mouth would be.

    fake = FakeReplicate(tls, polls=2)     # succeeded on the 2nd GET of a prediction
    fake.error = "CUDA out of memory"      # or: end failed with this error
    fake.polls = None                      # or: never finish
    fake.output = fake.file_url("x.png", b"not a png")  # or: answer this output instead
    fake.outcomes.append("truncated")      # the next prediction's output is cut in half
    fake.vectors_for[digest(png)] = [...]  # a CLIP model's embedding of this picture
    fake.lipsynced                         # a lip-sync model's inputs: [{"video", "audio"}]
    with fake:
        ReplicateImage({"base_url": fake.url}).generate(...)
    fake.succeeded                         # billable predictions
"""

from __future__ import annotations

import base64
import io
import itertools
import re
import tempfile
from email.parser import BytesParser
from email.policy import HTTP
from functools import cache
from pathlib import Path

from PIL import Image, ImageDraw

from tasks.ffmpeg import run_ffmpeg
from tests.fakes.google import digest, embedding, pan_clip
from tests.fakes.server import FakeServer, Request, Response

CREATE_PATH = r"^/v1/models/([^/]+)/([^/]+)/predictions$"
CREATE_VERSION_PATH = r"^/v1/predictions$"
GET_PATH = r"^/v1/predictions/([^/]+)$"
CANCEL_PATH = r"^/v1/predictions/([^/]+)/cancel$"
FILE_PATH = r"^/files/([^/]+)$"
UPLOAD_PATH = r"^/v1/files$"
UPLOADED_URL = re.compile(r"/v1/files/([^/]+)$")
IMAGE_SIZE = (1024, 1024)  # flux-schnell's, whatever shape is asked: the provider must fit it
VIDEO_SIZE = (48, 80)
VIDEO_FRAMES = 8  # a sample clip's length; fakes answer video models with what they ask
DEFAULT = object()  # `output`: what the model would answer
CLIP_LENGTH = 768  # openai/clip-vit-large-patch14's image features


@cache
def sample_png() -> bytes:
    image = Image.new("RGB", IMAGE_SIZE, "#1d3557")
    width, height = IMAGE_SIZE
    ImageDraw.Draw(image).ellipse((width // 5, height // 6, width * 4 // 5, height * 5 // 6),
                                  fill="#e63946")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()


@cache
def sample_mp4(frames: int = VIDEO_FRAMES, fps: int = 16) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "clip.mp4"
        width, height = VIDEO_SIZE
        run_ffmpeg(["-f", "lavfi", "-i", f"testsrc=size={width}x{height}:rate={fps}",
                    "-frames:v", str(frames), "-c:v", "libx264", "-preset", "ultrafast",
                    "-pix_fmt", "yuv420p", str(path)], what="make the fake clip")
        return path.read_bytes()


def asked_clip(input: dict) -> bytes:
    """A clip as long as a video model's input asks: frames at a rate, whole seconds, or the
    5 s a model that takes no length makes."""
    if "num_frames" in input:
        return sample_mp4(input["num_frames"], input.get("frames_per_second", 16))
    return sample_mp4(round(float(input.get("duration", 5)) * 16), 16)


@cache
def zero_frame_mp4() -> bytes:
    """An mp4 that ffmpeg opens but that holds no video frame (only silence)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "empty.mp4"
        run_ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=8000:cl=mono", "-t", "0.2",
                    "-c:a", "aac", str(path)], what="make the empty clip")
        return path.read_bytes()


class FakeReplicate:
    def __init__(self, tls, *, polls: int | None = 2):
        self.server = FakeServer(tls)
        self.url = self.server.url
        self.polls = polls  # GETs until a prediction ends; None: it never does
        self.error: str | None = None  # set: predictions end failed with this text
        self.output = DEFAULT
        # How the next predictions end, one each: "succeeded" (as set above), "failed", or
        # "truncated" (succeeded, its output file the first half of what the model makes).
        self.outcomes: list[str] = []
        self.endings: dict[str, str] = {}  # prediction id → the ending it was given
        self.succeeded = 0  # billable: predictions that ended succeeded
        self.vectors_for: dict[str, list] = {}  # a picture's digest → a CLIP model's embedding
        self.embedded: list[str] = []  # digests of the pictures a CLIP model embedded, in order
        self.predictions: dict[str, dict] = {}
        self.animate = False  # True: a video model answers with a pan across its input picture
        self.uploads: dict[str, bytes] = {}  # files uploaded through the Files API, by id
        self.upload_types: dict[str, str] = {}  # and their media types
        self.lipsynced: list[dict[str, bytes]] = []  # a lip-sync model's inputs, in order
        self._gets: dict[str, int] = {}
        self._ids = itertools.count(1)
        self.files = {"out-0.png": (sample_png(), "image/png")}
        self.server.route("POST", CREATE_PATH, self._create)
        self.server.route("POST", CREATE_VERSION_PATH, self._create)
        self.server.route("POST", CANCEL_PATH, self._cancel)
        self.server.route("GET", GET_PATH, self._get)
        self.server.route("GET", FILE_PATH, self._file)
        self.server.route("POST", UPLOAD_PATH, self._upload)

    def file_url(self, name: str, data: bytes, media_type: str = "application/octet-stream") -> str:
        """Serve `data` at an https URL and return it."""
        self.files[name] = (data, media_type)
        return f"{self.url}/files/{name}"

    def api_calls(self):
        """Every request to the API proper (not to the file host)."""
        return [call for call in self.server.calls() if call.path.startswith("/v1/")]

    def _create(self, request: Request) -> Response:
        body = request.json()
        if request.match.re.pattern == CREATE_PATH:
            model, version = f"{request.match.group(1)}/{request.match.group(2)}", "hidden"
        else:
            model, version = "owner/private", body["version"]
        prediction_id = f"p{next(self._ids):04d}"
        self.predictions[prediction_id] = {
            "id": prediction_id, "model": model, "version": version, "status": "starting",
            "input": body["input"], "output": None, "logs": "", "error": None,
            "metrics": {}, "data_removed": False,
            "created_at": "2025-01-01T00:00:00.000Z", "started_at": None, "completed_at": None,
            "urls": {"get": f"{self.url}/v1/predictions/{prediction_id}",
                     "cancel": f"{self.url}/v1/predictions/{prediction_id}/cancel",
                     "web": f"https://replicate.com/p/{prediction_id}"},
        }
        self._gets[prediction_id] = 0
        self.endings[prediction_id] = self.outcomes.pop(0) if self.outcomes else "succeeded"
        return Response.json(self.predictions[prediction_id], status=201)

    def _get(self, request: Request) -> Response:
        prediction = self.predictions.get(request.match.group(1))
        if prediction is None:
            return Response.json({"title": "Not found", "detail": "Not found.", "status": 404},
                                 status=404)
        if prediction["status"] in ("starting", "processing"):
            self._gets[prediction["id"]] += 1
            if self.polls is not None and self._gets[prediction["id"]] >= self.polls:
                self._finish(prediction)
            else:
                prediction.update(status="processing", started_at="2025-01-01T00:00:01.000Z",
                                  logs="  10%|█         | 1/10")
        return Response.json(prediction)

    def _finish(self, prediction: dict) -> None:
        prediction["completed_at"] = "2025-01-01T00:00:09.000Z"
        ending = self.endings[prediction["id"]]
        if self.error is not None or ending == "failed":
            prediction.update(status="failed", error=self.error or "the model failed")
            return
        try:
            output = self._output(prediction, ending)
        except ValueError as error:  # an input the model cannot read
            prediction.update(status="failed", error=str(error))
            return
        prediction.update(status="succeeded", output=output, metrics={"predict_time": 1.5})
        self.succeeded += 1

    def _output(self, prediction: dict, ending: str):
        if self.output is not DEFAULT:
            return self.output
        if "clip" in prediction["model"]:
            return self._features(prediction["input"], ending)
        if "lipsync" in prediction["model"]:
            video = self._lipsynced(prediction["input"])
            if ending == "truncated":
                video = video[:len(video) // 2]
            return self.file_url(f"{prediction['id']}.mp4", video, "video/mp4")
        video = re.search(r"video|i2v|kling|seedance", prediction["model"])
        if ending == "truncated":
            data, suffix = ((asked_clip(prediction["input"]), "mp4") if video
                            else (sample_png(), "png"))
            return self.file_url(f"{prediction['id']}.{suffix}", data[:len(data) // 2])
        if video:
            clip = (self._animated(prediction["input"]) if self.animate
                    else asked_clip(prediction["input"]))
            return self.file_url(f"{prediction['id']}.mp4", clip, "video/mp4")
        return [f"{self.url}/files/out-0.png"]

    @staticmethod
    def _animated(input: dict) -> bytes:
        """A pan across the input's picture (its first data URI), as long as the input asks."""
        uri = next(value for value in input.values()
                   if isinstance(value, str) and value.startswith("data:image/"))
        seconds = (input["num_frames"] / input.get("frames_per_second", 16)
                   if "num_frames" in input else float(input.get("duration", 5)))
        return pan_clip(base64.b64decode(uri.partition(",")[2]), seconds, 16)

    def _features(self, input: dict, ending: str) -> dict:
        """A CLIP model's answer: the embedding of the picture in `input`, a data URI; half of
        it when the prediction ends "truncated"."""
        if "image" not in input:
            raise ValueError("Missing inputs.")
        try:
            picture = base64.b64decode(input["image"].partition(",")[2], validate=True)
            vector = embedding(picture, CLIP_LENGTH, self.vectors_for)
        except (AttributeError, ValueError, OSError):
            raise ValueError("cannot identify image file") from None
        self.embedded.append(digest(picture))
        return {"embedding": vector[:len(vector) // 2] if ending == "truncated" else vector}

    def _upload(self, request: Request) -> Response:
        """The Files API: a multipart form whose `content` part is the file."""
        form = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {request.headers['content-type']}\r\n\r\n".encode() + request.body)
        part = next(part for part in form.iter_parts()
                    if part.get_param("name", header="content-disposition") == "content")
        file_id = f"f{next(self._ids):04d}"
        self.uploads[file_id] = part.get_content()
        self.upload_types[file_id] = part.get_content_type()
        return Response.json({
            "id": file_id, "name": part.get_filename() or "file",
            "content_type": part.get_content_type(), "size": len(self.uploads[file_id]),
            "etag": file_id, "checksums": {}, "metadata": {},
            "created_at": "2025-01-01T00:00:00.000Z", "expires_at": None,
            "urls": {"get": f"{self.url}/v1/files/{file_id}"}}, status=201)

    def _lipsynced(self, input: dict) -> bytes:
        """The input video bounced to the input audio's length, a bar over its mouth."""
        try:
            ids = [UPLOADED_URL.search(input[name])[1] for name in ("video", "audio")]
        except (KeyError, TypeError):
            raise ValueError("Missing inputs.") from None
        types = [self.upload_types[file_id].split("/")[0] for file_id in ids]
        if types != ["video", "audio"]:  # as the model reads its files: by their type
            raise ValueError(f"expected a video and an audio file, got {types}")
        video, audio = (self.uploads[file_id] for file_id in ids)
        self.lipsynced.append({"video": video, "audio": audio})
        with tempfile.TemporaryDirectory() as folder:
            source, sound, out = (Path(folder) / name for name in ("in.mp4", "in.wav", "out.mp4"))
            source.write_bytes(video)
            sound.write_bytes(audio)
            run_ffmpeg(["-i", str(source), "-i", str(sound), "-filter_complex",
                        "[0:v]split[a][b];[b]reverse[r];[a][r]concat,loop=-1:32767,"
                        "drawbox=x=iw/3:y=ih/2:w=iw/3:h=ih/12:color=black:t=fill[v]",
                        "-map", "[v]", "-map", "1:a", "-shortest", "-c:v", "libx264",
                        "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(out)],
                       what="lip-sync the fake clip")
            return out.read_bytes()

    def _cancel(self, request: Request) -> Response:
        prediction = self.predictions[request.match.group(1)]
        if prediction["status"] in ("starting", "processing"):
            prediction.update(status="canceled")
        return Response.json(prediction)

    def _file(self, request: Request) -> Response:
        if request.match.group(1) not in self.files:
            return Response(404, b"not found", {"Content-Type": "text/plain"})
        data, media_type = self.files[request.match.group(1)]
        return Response(200, data, {"Content-Type": media_type})

    def __enter__(self) -> FakeReplicate:
        self.server.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        self.server.__exit__(*exc)
