"""ReplicateImage and ReplicateAnimator: the real SDK against a fake Replicate over HTTPS."""

from __future__ import annotations

import base64
import io
import threading
from pathlib import Path

import pytest
from PIL import Image

from cache.store import ArtifactStore
from config.secrets import MissingSecretError
from tasks import checks, jobs, stopping
from tasks.clips import conformed
from tasks.ffmpeg import count_frames
from tasks.providers.base import (
    BrokenOutput, ClipRequest, ImageReference, ImageRequest, ProviderError)
from tasks.providers.replicate import ReplicateAnimator, ReplicateImage
from tasks.storyboard import Aspect, CameraMotion
from tests.fakes.google import make_png
from tests.fakes.replicate import (
    CANCEL_PATH, CREATE_PATH, CREATE_VERSION_PATH, GET_PATH, FakeReplicate,
    sample_mp4, sample_png, zero_frame_mp4)
from tests.fakes.server import RESET, Response

TOKEN = "canary-replicate-token-456"
FAST = {"attempts": 3, "deadline_s": 10, "timeout_s": 5, "poll_interval_s": 0.01}
IMAGE = ImageRequest(prompt="a lighthouse at dusk", style="noir", width=90, height=160, seed=7,
                     aspect=Aspect.portrait)


@pytest.fixture
def fake(tls, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", TOKEN)
    monkeypatch.delenv("REPLICATE_BASE_URL", raising=False)
    with FakeReplicate(tls, polls=2) as server:
        yield server


def image(fake, **options):
    return ReplicateImage({"base_url": fake.url, **FAST, **options}).generate(IMAGE)


def clip(fake, workdir: Path, duration: float = 81 / 16, **options):
    keyframe = workdir / "keyframe.png"
    keyframe.write_bytes(sample_png())
    request = ClipRequest(image=keyframe, prompt="waves crash", motion=CameraMotion.zoom_in,
                          duration=duration, width=90, height=160, fps=12, aspect=Aspect.portrait)
    return ReplicateAnimator({"base_url": fake.url, **FAST, **options}).animate(request, workdir)


def creates(fake):
    return fake.server.calls("POST", CREATE_PATH)


# Images ----------------------------------------------------------------------------------


def test_image_is_cut_to_the_shape_asked_for_and_scaled_down_never_up(fake):
    result = image(fake)
    with Image.open(io.BytesIO(result.png)) as png:
        assert (png.format, png.size) == ("PNG", (90, 160))
    assert result.usage.images == 1
    assert fake.succeeded == 1
    # A model that makes less than asked: its picture is kept at its size, in the asked
    # shape (the gate enlarges it or has it made again).
    fake.output = [f"data:image/png;base64,{base64.b64encode(make_png((64, 64))).decode()}"]
    with Image.open(io.BytesIO(image(fake).png)) as png:
        assert png.size == (36, 64)


def test_image_prediction_is_created_by_model_name_with_the_token_and_polled(fake):
    image(fake)
    [create] = creates(fake)
    assert create.match.groups() == ("black-forest-labs", "flux-schnell")
    assert create.headers["authorization"] == f"Bearer {TOKEN}"
    assert create.json()["input"] == {
        "prompt": "a lighthouse at dusk, black and white, film noir, high contrast",
        "aspect_ratio": "9:16", "seed": 7, "output_format": "png"}
    polls = fake.server.calls("GET", GET_PATH)
    assert len(polls) == 2 and all(p.headers["authorization"] == f"Bearer {TOKEN}" for p in polls)
    [download] = fake.server.calls("GET", r"^/files/")
    assert "authorization" not in download.headers  # the token stays with the API


def test_a_model_that_draws_from_references_gets_them_and_one_that_does_not_gets_none(
        fake, tmp_path):
    references = []
    for index, subject in enumerate(["character", "location"]):
        (tmp_path / f"ref{index}.png").write_bytes(sample_png())
        references.append(ImageReference(path=tmp_path / f"ref{index}.png", subject=subject,
                                         name=f"ref {index}"))
    request = IMAGE.model_copy(update={"references": references})
    plain = ReplicateImage({"base_url": fake.url, **FAST})
    drawing = ReplicateImage({"base_url": fake.url, **FAST, "model": "google/nano-banana",
                              "reference_input": "image_input"})
    assert (plain.accepts_reference_images, drawing.accepts_reference_images) == (False, True)

    drawing.generate(request)

    [create] = creates(fake)
    sent = create.json()["input"]["image_input"]
    assert [base64.b64decode(uri.split(",", 1)[1]) for uri in sent] == [sample_png()] * 2


def test_a_pinned_version_is_created_through_the_versions_endpoint(fake):
    image(fake, model="acme/painter:0123abcd", extra_input={"num_inference_steps": 4})
    [create] = fake.server.calls("POST", CREATE_VERSION_PATH)
    assert create.json()["version"] == "0123abcd"
    assert create.json()["input"]["num_inference_steps"] == 4


def test_a_transient_poll_failure_is_polled_again(fake):
    fake.server.fail("GET", GET_PATH, [Response.json({"title": "Oops"}, 500), RESET])
    assert image(fake).png
    assert len(creates(fake)) == 1


def test_a_failed_prediction_is_an_error_with_its_text(fake):
    fake.error = "NSFW content detected"
    with pytest.raises(ProviderError, match="failed: NSFW content detected"):
        image(fake)
    assert len(creates(fake)) == 1 and fake.succeeded == 0


def test_a_prediction_that_never_finishes_is_cancelled_at_the_deadline(fake):
    fake.polls = None
    with pytest.raises(ProviderError, match="still processing after 0.3 s"):
        image(fake, deadline_s=0.3, poll_interval_s=0.05)
    assert len(fake.server.calls("POST", CANCEL_PATH)) == 1
    assert list(fake.predictions.values())[0]["status"] == "canceled"


@pytest.mark.parametrize("output", ["none", "empty", "not-a-png", "http", "missing-file"])
def test_unusable_image_output_is_an_error(fake, output):
    fake.output = {"none": None, "empty": [],
                   "not-a-png": [fake.file_url("broken.png", b"\x89PNG\r\n\x1a\nbroken")],
                   "http": ["http://127.0.0.1:9/out.png"],
                   "missing-file": [f"{fake.url}/files/gone.png"]}[output]
    with pytest.raises(ProviderError):
        image(fake)
    assert len(creates(fake)) == 1


def test_predictions_end_as_the_fake_is_told_one_by_one(fake):
    """The fake's per-prediction endings (a soak draws them): an output cut in half is billed
    and broken, a failed one is an error, then predictions succeed again."""
    fake.outcomes = ["truncated", "failed"]
    with pytest.raises(BrokenOutput, match="the picture does not decode"):
        image(fake)
    with pytest.raises(ProviderError, match="failed"):
        image(fake)
    assert image(fake).png
    assert fake.succeeded == 2 and len(creates(fake)) == 3


def test_a_data_uri_output_is_decoded(fake):
    fake.output = [f"data:image/png;base64,{base64.b64encode(sample_png()).decode()}"]
    with Image.open(io.BytesIO(image(fake).png)) as png:
        assert png.size == (90, 160)


def test_garbage_json_from_create_is_asked_again(fake):
    fake.server.fail("POST", CREATE_PATH,
                     [Response(201, b"{oops", {"Content-Type": "application/json"})])
    assert image(fake).png
    assert len(creates(fake)) == 2


def test_clips_name_a_missing_token_too(fake, monkeypatch, tmp_path):
    monkeypatch.delenv("REPLICATE_API_TOKEN")
    monkeypatch.chdir(tmp_path)  # no .env file to fall back on
    with pytest.raises(MissingSecretError, match="REPLICATE_API_TOKEN"):
        clip(fake, tmp_path)
    assert fake.server.calls() == []


# Clips -----------------------------------------------------------------------------------


def test_clip_is_written_to_the_workdir_and_decodes(fake, tmp_path):
    result = clip(fake, tmp_path)
    assert result.video == tmp_path / "replicate.mp4"
    assert count_frames(result.video) == 81  # as many frames as the input asked for
    assert result.usage.video_seconds == pytest.approx(81 / 16)
    assert fake.succeeded == 1


def test_clip_input_has_the_keyframe_inline_the_prompt_and_the_length(fake, tmp_path):
    clip(fake, tmp_path, duration=121 / 16, extra_input={"resolution": "480p"})
    [create] = creates(fake)
    assert create.match.groups() == ("wan-video", "wan-2.2-i2v-fast")
    sent = create.json()["input"]
    assert base64.b64decode(sent["image"].removeprefix("data:image/png;base64,")) == sample_png()
    assert sent["prompt"] == "waves crash. the camera slowly zooms in"
    assert (sent["num_frames"], sent["frames_per_second"], sent["resolution"]) == (121, 16, "480p")


def test_known_models_declare_their_lengths_and_unknown_ones_a_safe_default():
    wan = ReplicateAnimator()
    assert wan.fit_duration(4.0) == pytest.approx(81 / 16)
    assert wan.fit_duration(6.0) == pytest.approx(121 / 16)
    assert wan.fit_duration(30.0) == pytest.approx(121 / 16)
    kling = ReplicateAnimator({"model": "kwaivgi/kling-v2.1"})
    assert (kling.fit_duration(6), kling.spec.image_field) == (10.0, "start_image")
    unknown = ReplicateAnimator({"model": "someone/new-video-model"})
    assert unknown.fit_duration(8) == 5.0 and unknown.spec.length_input(5.0) == {}
    assert unknown.fit_aspect(Aspect.portrait) == Aspect.portrait


def test_kling_is_asked_for_whole_seconds_from_a_start_image(fake, tmp_path):
    clip(fake, tmp_path, duration=10.0, model="kwaivgi/kling-v2.1")
    sent = creates(fake)[0].json()["input"]
    assert sent["duration"] == 10 and sent["start_image"].startswith("data:image/png;base64,")


def test_a_prediction_without_output_is_an_error(fake, tmp_path):
    fake.output = None
    with pytest.raises(ProviderError, match="without an output"):
        clip(fake, tmp_path)


@pytest.mark.parametrize("output", ["zero-frames", "truncated", "short"])
def test_unusable_clip_output_is_a_broken_output(fake, tmp_path, output):
    fake.output = {"zero-frames": fake.file_url("empty.mp4", zero_frame_mp4(), "video/mp4"),
                   "truncated": fake.file_url("cut.mp4", sample_mp4(81)[:400], "video/mp4"),
                   "short": fake.file_url("short.mp4", sample_mp4(40), "video/mp4")}[output]
    result = clip(fake, tmp_path)
    request = ClipRequest(image=tmp_path / "keyframe.png", motion=CameraMotion.zoom_in,
                          duration=81 / 16, width=90, height=160, fps=12, aspect=Aspect.portrait)
    with pytest.raises(BrokenOutput):
        made = conformed(result.video, request.width, request.height, request.fps, result.usage)
        checks.clip(request.model_dump(), {"clip": made})
    assert fake.succeeded == 1  # billed all the same: the node's cost counts it


def test_a_failed_clip_prediction_is_an_error(fake, tmp_path):
    fake.error = "Prediction interrupted; please retry (code: PA)"
    with pytest.raises(ProviderError, match="interrupted"):
        clip(fake, tmp_path)


# Predictions that outlive the process -----------------------------------------------------

NODE_KEY = "5" * 64


def test_a_stopped_run_keeps_its_prediction_and_the_next_run_resumes_it(fake, tmp_path):
    store = ArtifactStore(tmp_path / "store")
    fake.polls = None  # running until the test lets it finish
    failure: list[BaseException] = []

    def first_run():
        try:
            with jobs.kept(store, NODE_KEY, "replicate"):
                image(fake)
        except BaseException as error:  # noqa: BLE001 - handed to the test's thread
            failure.append(error)

    worker = threading.Thread(target=first_run)
    worker.start()
    fake.server.wait_for_calls("GET", GET_PATH, 2)  # submitted, and being polled
    stopping.request("Ctrl-C")
    worker.join(30)
    stopping.reset()
    assert [type(error) for error in failure] == [stopping.Stopped]
    assert store.pending_job(NODE_KEY)["id"] == "p0001"
    assert not fake.server.calls("POST", CANCEL_PATH)  # kept running: it is paid for

    fake.polls = 1
    with jobs.kept(store, NODE_KEY, "replicate"):
        assert image(fake).png
    assert len(creates(fake)) == 1 and fake.succeeded == 1


def test_a_prediction_replicate_lost_or_failed_is_created_again(fake, tmp_path):
    store = ArtifactStore(tmp_path / "store")
    store.remember_job(NODE_KEY, {"id": "p9999", "provider": "replicate"})  # unknown to it
    with jobs.kept(store, NODE_KEY, "replicate"):
        assert image(fake).png
    assert len(creates(fake)) == 1

    fake.error = "CUDA out of memory"
    with jobs.kept(store, "6" * 64, "replicate"), pytest.raises(ProviderError, match="CUDA"):
        image(fake)
    assert store.pending_job("6" * 64) is None  # failed: the next try creates a new one
