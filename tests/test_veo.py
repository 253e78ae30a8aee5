"""Veo clips: the real google-genai SDK in Vertex mode against a fake Vertex AI endpoint."""

from __future__ import annotations

import base64
import traceback

import pytest
from google.oauth2.credentials import Credentials

from cache.store import ArtifactStore
from config.secrets import MissingSecretError
from tasks import jobs
from tasks.ffmpeg import count_frames, probe
from tasks.clips import conformed
from tasks.providers.base import BrokenOutput, ClipRequest, ProviderError
from tasks.providers.veo import VeoAnimator
from tasks.storyboard import Aspect, CameraMotion
from tests.fakes.google import FILTER_REASON, FakeGoogle, make_mp4, make_png
from tests.fakes.server import RESET, Response

TOKEN = "veo-test-token"
FAST = {"attempts": 3, "deadline_s": 20, "timeout_s": 5, "poll_interval_s": 0.05,
        "project": "reelflow-test", "location": "us-central1"}


@pytest.fixture(scope="module")
def veo_video(tmp_path_factory) -> bytes:
    return make_mp4(tmp_path_factory.mktemp("veo") / "veo.mp4")


@pytest.fixture
def google(tls, veo_video):
    with FakeGoogle(tls, video=veo_video, polls=3) as fake:
        yield fake


@pytest.fixture
def request_(tmp_path) -> ClipRequest:
    keyframe = tmp_path / "keyframe.png"
    keyframe.write_bytes(make_png((90, 160)))
    return ClipRequest(image=keyframe, prompt="waves on a beach", motion=CameraMotion.zoom_in,
                       duration=3.2, width=90, height=160, fps=12, aspect=Aspect.portrait)


def animator(google, **options) -> VeoAnimator:
    return VeoAnimator({"base_url": google.url, **FAST, **options},
                       credentials=Credentials(token=TOKEN))


def workdir(tmp_path):
    folder = tmp_path / "work"
    folder.mkdir()
    return folder


def test_clip_is_generated_polled_and_conformed(google, request_, tmp_path, veo_video):
    veo = animator(google)
    result = veo.animate(request_, workdir(tmp_path))

    assert result.video.read_bytes() == veo_video  # as Veo made it; the clip node conforms it
    clip = conformed(result.video, request_.width, request_.height, request_.fps,
                     result.usage)
    info = probe(clip)
    assert (info.width, info.height, info.fps, info.has_audio) == (90, 160, 12, False)
    assert count_frames(clip) > 0
    assert result.usage.video_seconds == 4.0  # 3.2 s asked, 4 s is the shortest Veo makes
    [submit] = google.calls("POST", "predictLongRunning")
    assert submit.path == ("/v1beta1/projects/reelflow-test/locations/us-central1/publishers/"
                           "google/models/veo-3.0-fast-generate-001:predictLongRunning")
    assert submit.headers["authorization"] == f"Bearer {TOKEN}"
    body = submit.json()
    image = body["instances"][0]["image"]
    assert base64.urlsafe_b64decode(image["bytesBase64Encoded"]) == request_.image.read_bytes()
    assert image["mimeType"] == "image/png"
    assert "waves on a beach" in body["instances"][0]["prompt"]
    assert body["parameters"] == {"sampleCount": 1, "durationSeconds": 4, "aspectRatio": "9:16",
                                  "generateAudio": False}
    polls = google.calls("POST", "fetchPredictOperation")
    assert len(polls) == 3
    assert polls[0].json()["operationName"].startswith(
        "projects/reelflow-test/locations/us-central1/publishers/google/models/")
    assert google.billed["video_seconds"] == 4


def test_dropped_poll_is_retried(google, request_, tmp_path):
    google.fail("POST", "fetchPredictOperation", [RESET])

    result = animator(google).animate(request_, workdir(tmp_path))

    assert count_frames(result.video) > 0
    assert len(google.calls("POST", "fetchPredictOperation")) == 4


def test_a_submission_or_poll_answered_with_something_not_json_is_asked_again(
        google, request_, tmp_path):
    """A body that is not JSON (a proxy's error page, a reply cut off) is retried like a
    transient failure, never the end of the node."""
    not_json = Response(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "application/json"})
    google.fail("POST", "predictLongRunning", [not_json])
    google.fail("POST", "fetchPredictOperation", [not_json])

    result = animator(google).animate(request_, workdir(tmp_path))

    assert count_frames(result.video) > 0
    assert len(google.calls("POST", "predictLongRunning")) == 2
    assert len(google.calls("POST", "fetchPredictOperation")) == 4


def test_polls_failing_more_often_than_attempts_are_polled_again_until_the_job_ends(
        google, request_, tmp_path):
    """Polls cost nothing: a run of failed polls longer than `attempts` does not give up a job
    Veo may have finished (and billed) and pay a fallback for the same clip."""
    busy = Response.json({"error": {"code": 503, "message": "busy", "status": "UNAVAILABLE"}}, 503)
    google.fail("POST", "fetchPredictOperation", [busy, RESET, busy, busy, busy])  # attempts: 3

    result = animator(google).animate(request_, workdir(tmp_path))

    assert count_frames(result.video) > 0
    assert len(google.calls("POST", "predictLongRunning")) == 1
    assert len(google.calls("POST", "fetchPredictOperation")) == 5 + 3  # the job's 3 polls
    assert google.billed["video_seconds"] == 4


def test_rate_limited_submission_is_retried(google, request_, tmp_path):
    google.fail("POST", "predictLongRunning", [Response.json(
        {"error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED"}},
        429, {"Retry-After": "0"})])

    animator(google).animate(request_, workdir(tmp_path))

    assert len(google.calls("POST", "predictLongRunning")) == 2


def test_operation_that_never_finishes_ends_the_node(google, request_, tmp_path):
    google.outcomes.append("never")

    with pytest.raises(ProviderError, match=r"did not finish within 0.4s"):
        animator(google, deadline_s=0.4).animate(request_, workdir(tmp_path))
    assert len(google.calls("POST", "fetchPredictOperation")) >= 2
    assert not (tmp_path / "work" / "veo.mp4").exists()


def test_safety_filtered_result_names_the_filter(google, request_, tmp_path):
    google.outcomes.append("filtered")

    with pytest.raises(ProviderError, match="safety filter") as caught:
        animator(google).animate(request_, workdir(tmp_path))
    assert FILTER_REASON in str(caught.value)
    assert google.billed["video_seconds"] == 0


def test_undecodable_video_is_a_broken_output_billed_as_made(google, request_, tmp_path):
    google.outcomes.append("garbage")
    result = animator(google).animate(request_, workdir(tmp_path))

    with pytest.raises(BrokenOutput, match="does not decode") as caught:
        conformed(result.video, request_.width, request_.height, request_.fps, result.usage)
    assert caught.value.usage.video_seconds == google.billed["video_seconds"] == 4


@pytest.mark.parametrize("outcome, match", [
    ("error", "failed: Video generation failed due to an internal error"),
    ("gcs", "not returned inline"),
])
def test_failed_operation_is_a_provider_error(google, request_, tmp_path, outcome, match):
    google.outcomes.append(outcome)

    with pytest.raises(ProviderError, match=match) as caught:
        animator(google).animate(request_, workdir(tmp_path))
    assert TOKEN not in "".join(traceback.format_exception(caught.value))
    assert len(google.calls("POST", "predictLongRunning")) == 1


def test_rejected_request_fails_after_one_call(google, request_, tmp_path):
    google.fail("POST", "predictLongRunning", [Response.json(
        {"error": {"code": 400, "message": "Unsupported durationSeconds",
                   "status": "INVALID_ARGUMENT"}}, 400)])

    with pytest.raises(ProviderError, match="HTTP 400"):
        animator(google).animate(request_, workdir(tmp_path))
    assert len(google.calls()) == 1


def test_missing_application_default_credentials_are_named(google, request_, tmp_path,
                                                           monkeypatch):
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "missing.json"))
    veo = VeoAnimator({"base_url": google.url, **FAST})

    with pytest.raises(MissingSecretError, match="GOOGLE_APPLICATION_CREDENTIALS"):
        veo.animate(request_, workdir(tmp_path))
    assert google.calls() == []


def test_capabilities_snap_to_what_veo_makes():
    veo = VeoAnimator()
    assert [veo.fit_duration(d) for d in (1, 4, 5, 7.5, 12)] == [4, 4, 6, 8, 8]
    assert veo.fit_aspect(Aspect.square) in (Aspect.portrait, Aspect.landscape)
    assert "project" not in veo.params() and "poll_interval_s" not in veo.params()


# Jobs that outlive the process ------------------------------------------------------------

NODE_KEY = "4" * 64


def test_an_operation_left_running_is_resumed_by_the_next_run_not_submitted_again(
        google, request_, tmp_path):
    store = ArtifactStore(tmp_path / "store")
    google.hold = True  # still running when the first run gives up waiting
    with jobs.kept(store, NODE_KEY, "veo"), pytest.raises(ProviderError, match="kept"):
        animator(google, deadline_s=0.3).animate(request_, workdir(tmp_path))
    [submit] = google.calls("POST", "predictLongRunning")
    assert store.pending_job(NODE_KEY)["id"].startswith("projects/reelflow-test/")

    google.hold = False
    again = tmp_path / "again"
    again.mkdir()
    with jobs.kept(store, NODE_KEY, "veo"):
        result = animator(google).animate(request_, again)

    assert google.calls("POST", "predictLongRunning") == [submit]  # resumed, not paid again
    assert count_frames(result.video) > 0
    assert google.billed["video_seconds"] == 4


def test_an_operation_vertex_no_longer_has_is_submitted_again(google, request_, tmp_path):
    store = ArtifactStore(tmp_path / "store")
    lost = ("projects/reelflow-test/locations/us-central1/publishers/google/models/"
            "veo-3.0-fast-generate-001/operations/lost")
    store.remember_job(NODE_KEY, {"id": lost, "provider": "veo"})

    with jobs.kept(store, NODE_KEY, "veo"):
        result = animator(google).animate(request_, workdir(tmp_path))

    assert count_frames(result.video) > 0
    assert len(google.calls("POST", "predictLongRunning")) == 1
    assert store.pending_job(NODE_KEY)["id"] != lost  # the new one, until the node is stored


def test_a_failed_operation_is_forgotten_so_the_next_try_submits_anew(google, request_, tmp_path):
    store = ArtifactStore(tmp_path / "store")
    google.outcomes.append("error")
    with jobs.kept(store, NODE_KEY, "veo"), pytest.raises(ProviderError, match="internal error"):
        animator(google).animate(request_, workdir(tmp_path))
    assert store.pending_job(NODE_KEY) is None
