"""The `cloud` profile end to end: Gemini plans and paints, ElevenLabs speaks, Veo animates,
GCS publishes, all real SDK code talking to local fakes over HTTPS, on a real Prefect server.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from config.secrets import MissingSecretError
from flows.options import RenderOptions
from flows.video import make_video, render_storyboard
from tasks.budget import BudgetExceeded
from tasks.ffmpeg import probe
from tasks.storyboard import Storyboard
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.gcs import service_account_key, storage_emulator
from tests.fakes.google import FakeGoogle, make_mp4
from tests.fakes.replicate import FakeReplicate
from tests.fakes.server import Response

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")

CANARIES = {"GEMINI_API_KEY": "canary-gemini-0001", "ELEVENLABS_API_KEY": "canary-eleven-0002",
            "REPLICATE_API_TOKEN": "canary-replicate-0003"}
BUCKET = "reelflow-videos"


@pytest.fixture(scope="module")
def veo_video(tmp_path_factory) -> bytes:
    return make_mp4(tmp_path_factory.mktemp("veo") / "veo.mp4", seconds=4)


@pytest.fixture
def cloud(tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, veo_video: bytes):
    """Every cloud service of the profile, faked on 127.0.0.1, and the environment a user sets."""
    with FakeGoogle(tls, video=veo_video, polls=2) as google, FakeElevenLabs(tls) as eleven, \
            FakeReplicate(tls, polls=1) as replicate, storage_emulator() as gcs:
        # Veo authenticates with Application Default Credentials: a service-account key whose
        # token endpoint is the fake.
        google.server.route("POST", r"^/token$", lambda request: Response.json(
            {"access_token": "fake-vertex-token", "expires_in": 3600, "token_type": "Bearer"}))
        service_account_key(tmp_path / "adc.json", token_uri=f"{google.url}/token")
        service_account_key(tmp_path / "signer.json")
        monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(tmp_path / "adc.json"))
        monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "test-project")
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs)
        storage.Client(project="test", credentials=AnonymousCredentials()).create_bucket(BUCKET)
        for name, value in CANARIES.items():
            monkeypatch.setenv(name, value)
        monkeypatch.setenv("REELFLOW_PROFILE", "cloud")
        monkeypatch.setenv("REELFLOW_PUBLISH", f"gs://{BUCKET}/shorts")
        monkeypatch.setenv("REELFLOW_GCS_SIGNING_KEY", str(tmp_path / "signer.json"))
        monkeypatch.setenv("REELFLOW_PROVIDER_OPTIONS", json.dumps({
            "gemini": {"base_url": google.url},
            "gemini-image": {"base_url": google.url},
            "veo": {"base_url": google.url, "poll_interval_s": 0.05, "deadline_s": 30},
            "elevenlabs": {"base_url": eleven.url},
            "replicate": {"base_url": replicate.url, "poll_interval_s": 0.05},
        }))
        yield {"google": google, "eleven": eleven, "replicate": replicate}


def served_by(summary) -> dict[str, str]:
    manifest = json.loads(summary.manifest.read_text())
    return {node["id"]: node["provider"] for node in manifest["nodes"]}


def published_objects() -> list[str]:
    client = storage.Client(project="test", credentials=AnonymousCredentials())
    return sorted(blob.name for blob in client.list_blobs(BUCKET))


def written_text(summary) -> str:
    return "\n".join(path.read_text(errors="replace")
                     for path in summary.video.parent.iterdir() if path.suffix != ".mp4")


def test_a_cloud_render_publishes_to_gcs_and_a_rerun_pays_nothing(cloud):
    summary = make_video(topic="tide pools", scenes=2)

    providers = served_by(summary)
    assert providers["plan"] == "gemini"
    assert {providers[f"s00{i}-l1-tts"] for i in (1, 2)} == {"elevenlabs"}
    assert {providers[f"s00{i}-image"] for i in (1, 2)} == {"gemini-image"}
    assert {providers[f"s00{i}-clip"] for i in (1, 2)} == {"veo"}
    info = probe(summary.video)
    assert (info.width, info.height, info.video_codec, info.audio_codec) == (180, 320, "h264", "aac")
    assert summary.cost_usd > 0
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in summary.url
    folder = summary.video.parent.name
    assert published_objects() == [f"shorts/{folder}/{name}" for name in
                                   ("manifest.json", "storyboard.json", "subtitles.ass", "video.mp4")]
    assert json.loads(summary.manifest.read_text())["url"] == summary.url
    for canary in CANARIES.values():
        assert canary not in written_text(summary)

    billed = (dict(cloud["google"].billed), cloud["eleven"].billable,
              len(cloud["google"].calls("POST", "predictLongRunning")))
    again = make_video(topic="tide pools", scenes=2)
    assert again.generated == 0 and again.cost_usd == 0 and again.saved_usd == summary.cost_usd
    assert (dict(cloud["google"].billed), cloud["eleven"].billable,
            len(cloud["google"].calls("POST", "predictLongRunning"))) == billed


def test_a_safety_filtered_clip_falls_back_and_the_next_run_asks_veo_again(cloud):
    board = make_video(topic="volcanoes", scenes=1)
    storyboard = Storyboard.model_validate_json(board.storyboard.read_text())
    edited = storyboard.model_copy(update={"scenes": [storyboard.scenes[0].model_copy(
        update={"visual_prompt": "lava meets the sea"})]})
    cloud["google"].outcomes = ["filtered"]

    summary = render_storyboard(edited)

    clip = next(node for node in json.loads(summary.manifest.read_text())["nodes"]
                if node["kind"] == "clip")
    assert clip["provider"] == "replicate" and clip["status"] == "generated"
    assert "veo" in clip["fallbacks"][0] and "filter" in clip["fallbacks"][0].lower()
    asked = len(cloud["google"].calls("POST", "predictLongRunning"))
    cloud["google"].outcomes = ["filtered"]

    again = render_storyboard(edited)

    assert len(cloud["google"].calls("POST", "predictLongRunning")) == asked + 1  # veo first
    clip = next(node for node in again.nodes if node.kind == "clip")
    assert clip.status == "cached"  # then replicate's clip, from the store: paid once
    assert cloud["replicate"].succeeded == 1


def test_a_render_over_max_cost_is_refused_after_planning_before_any_media(cloud):
    with pytest.raises(BudgetExceeded, match="estimated at"):
        make_video(topic="glaciers", scenes=3, options=RenderOptions(max_cost=0.02))
    assert dict(cloud["google"].billed) == {"text": 1}  # the storyboard, and nothing else
    assert cloud["eleven"].billable == 0
    assert not cloud["google"].calls("POST", "predictLongRunning")


def test_a_plan_that_alone_would_pass_max_cost_is_never_asked_for(cloud):
    with pytest.raises(BudgetExceeded, match="max-cost: plan"):
        make_video(topic="glaciers", scenes=3, options=RenderOptions(max_cost=0.001))
    assert not cloud["google"].calls()


def test_a_missing_key_fails_before_any_call_naming_it(cloud, monkeypatch):
    monkeypatch.delenv("ELEVENLABS_API_KEY")
    with pytest.raises(MissingSecretError, match="ELEVENLABS_API_KEY"):
        make_video(topic="glaciers", scenes=1)
    assert not cloud["google"].calls() and cloud["eleven"].billable == 0


def test_the_cli_makes_a_cloud_video_and_prints_its_signed_url(cloud, prefect_api_url):
    from tests.test_cli_input import run

    env = {**os.environ, "PREFECT_API_URL": prefect_api_url}
    result = run(["make", "tide pools", "--scenes", "1", "--profile", "cloud", "--max-cost", "5",
                  "--publish", f"gs://{BUCKET}/cli", "--json"], env)

    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout)
    assert "X-Goog-Algorithm=GOOG4-RSA-SHA256" in summary["url"]
    assert 0 < summary["cost_usd"] <= 5
    assert any(name.startswith("cli/") and name.endswith("/video.mp4")
               for name in published_objects())
    for canary in CANARIES.values():
        assert canary not in result.stdout + result.stderr


def set_options(monkeypatch, provider: str, **options) -> None:
    current = json.loads(os.environ["REELFLOW_PROVIDER_OPTIONS"])
    current[provider] = {**current.get(provider, {}), **options}
    monkeypatch.setenv("REELFLOW_PROVIDER_OPTIONS", json.dumps(current))


def stored_providers(workspace) -> dict[str, set[str]]:
    """Node kind → the providers the store holds results of."""
    from cache.store import ArtifactStore

    held: dict[str, set[str]] = {}
    for record in ArtifactStore(workspace["store"]).records():
        held.setdefault(record.kind, set()).add(record.provider)
    return held


def test_a_hung_voice_provider_trips_its_deadline_and_the_chain_falls_back(
        cloud, monkeypatch, workspace):
    """ElevenLabs accepts every request and never answers: each call times out, the node's
    attempts run out, eSpeak speaks instead; once ElevenLabs answers, it is asked again."""
    from tests.fakes.elevenlabs import TTS_PATH
    from tests.fakes.server import HANG

    monkeypatch.setenv("REELFLOW_SPEECH", "elevenlabs,espeak")
    set_options(monkeypatch, "elevenlabs", timeout_s=0.5, attempts=2, deadline_s=5)
    cloud["eleven"].server.fail("POST", TTS_PATH, [HANG, HANG])

    summary = make_video(topic="tide pools", scenes=1)

    tts = next(node for node in json.loads(summary.manifest.read_text())["nodes"]
               if node["kind"] == "tts")
    assert tts["provider"] == "espeak" and tts["status"] == "generated"
    assert "elevenlabs" in tts["fallbacks"][0] and "timed out" in tts["fallbacks"][0].lower()
    assert len(cloud["eleven"].server.calls("POST", TTS_PATH)) == 2  # the node's attempts
    assert probe(summary.video).has_audio
    assert stored_providers(workspace)["tts"] == {"espeak"}

    again = make_video(topic="tide pools", scenes=1)  # ElevenLabs answers now
    assert served_by(again)["s001-l1-tts"] == "elevenlabs"
    assert cloud["eleven"].billable == 1


def test_garbage_from_any_provider_is_a_failure_and_never_stored(cloud, monkeypatch, workspace):
    """Truncated audio, a picture that does not decode, a video that is not one: each node
    falls back, nothing of the garbage reaches the store, and the next run asks again."""
    from tests.fakes.elevenlabs import TTS_PATH, speech_reply
    from tests.fakes.google import GENERATE

    bad_png = b"not a png"
    bad_video = b"not an mp4 at all"  # the Veo fake's "garbage" outcome
    monkeypatch.setenv("REELFLOW_SPEECH", "elevenlabs,espeak")
    monkeypatch.setenv("REELFLOW_IMAGE", "gemini-image,local")
    monkeypatch.setenv("REELFLOW_VIDEO", "veo,kenburns")
    cloud["eleven"].server.fail("POST", TTS_PATH, [speech_reply(
        "Tide pools", audio=b"\x01\x02\x03")])
    cloud["google"].fail("POST", GENERATE.replace("(?P<model>[^/:]+)", "gemini-2.5-flash-image"),
                         [Response.json({"candidates": [{"content": {"role": "model", "parts": [
                             {"inlineData": {"mimeType": "image/png",
                                             "data": base64.b64encode(bad_png).decode()}}]},
                             "finishReason": "STOP"}]})])
    cloud["google"].outcomes = ["garbage"]

    summary = make_video(topic="tide pools", scenes=1)

    providers = served_by(summary)
    assert (providers["s001-l1-tts"], providers["s001-image"], providers["s001-clip"]) == (
        "espeak", "local", "kenburns")
    blobs = [path.read_bytes() for path in (workspace["store"] / "blobs").glob("??/*")]
    assert not any(bad_png in blob or bad_video in blob for blob in blobs)
    held = stored_providers(workspace)
    assert (held["tts"], held["image"], held["clip"]) == ({"espeak"}, {"local"}, {"kenburns"})

    again = make_video(topic="tide pools", scenes=1)  # every provider answers well now
    providers = served_by(again)
    assert (providers["s001-l1-tts"], providers["s001-image"], providers["s001-clip"]) == (
        "elevenlabs", "gemini-image", "veo")
