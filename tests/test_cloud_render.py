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
from flows.editing import EditScene
from flows.options import RenderOptions
from flows.rerun import rerun_with_edits
from flows.video import make_video, render_storyboard
from tasks.budget import BudgetExceeded
from tasks.ffmpeg import probe
from tasks.storyboard import Storyboard
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fakes.gcs import service_account_key, storage_emulator
from tests.fakes.google import FakeGoogle, make_png
from tests.fakes.replicate import FakeReplicate
from tests.fakes.server import Response

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")

CANARIES = {"GEMINI_API_KEY": "canary-gemini-0001", "ELEVENLABS_API_KEY": "canary-eleven-0002",
            "REPLICATE_API_TOKEN": "canary-replicate-0003"}
BUCKET = "reelflow-videos"


@pytest.fixture
def cloud(tls, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Every cloud service of the profile, faked on 127.0.0.1, and the environment a user sets."""
    with FakeGoogle(tls, polls=2) as google, FakeElevenLabs(tls) as eleven, \
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
        # The chains as the profile writes them (tests/test_router.py routes shots).
        monkeypatch.setenv("REELFLOW_QUALITY", "off")
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
                                   ("history.json", "manifest.json", "storyboard.json",
                                    "subtitles.ass", "video.mp4")]
    assert json.loads(summary.manifest.read_text())["url"] == summary.url
    for canary in CANARIES.values():
        assert canary not in written_text(summary)

    billed = (dict(cloud["google"].billed), cloud["eleven"].billable,
              len(cloud["google"].calls("POST", "predictLongRunning")))
    again = make_video(topic="tide pools", scenes=2)
    assert again.generated == 0 and again.cost_usd == 0 and again.saved_usd == summary.cost_usd
    assert (dict(cloud["google"].billed), cloud["eleven"].billable,
            len(cloud["google"].calls("POST", "predictLongRunning"))) == billed


def test_a_dry_run_lists_and_prices_exactly_what_the_edit_then_generates_and_calls_nothing(
        cloud):
    made = make_video(topic="coral reefs", scenes=3)
    edits = [EditScene(scene="s002", narration="Coral is an animal, not a plant.")]

    def calls() -> tuple:
        return tuple(len(cloud[name].server.calls()) for name in ("google", "eleven", "replicate"))

    before = calls()
    preview = rerun_with_edits(str(made.video.parent), edits, dry_run=True)
    assert calls() == before  # no provider was asked anything
    edited = rerun_with_edits(str(made.video.parent), edits)

    assert {node.id for node in preview.generated} == {
        node.id for node in edited.nodes if node.status == "generated" and node.kind != "publish"}
    assert {node.id for node in preview.generated if node.cost_usd} == {"s002-l1-tts"}
    assert preview.cost_usd == pytest.approx(edited.cost_usd) and edited.cost_usd > 0


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
    monkeypatch.setenv("REELFLOW_SPEECH", "elevenlabs")  # no eSpeak to fall back to
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


def test_broken_media_is_never_stored_the_chain_serves_and_the_cost_is_what_was_billed(
        cloud, monkeypatch, workspace):
    """A clip cut to half its bytes and one half as long as asked, a picture cut short, audio
    shorter than its words: each is retried, then the chain's next provider serves the node;
    nothing broken is stored or published, and each node's cost counts every reply billed."""
    from cache.store import ArtifactStore
    from config.pricing import price_table
    from tasks import checks
    from tests.fakes.elevenlabs import TTS_PATH
    from tests.fakes.google import GENERATE
    from tests.test_elevenlabs import truncated_audio_reply

    whole_png = make_png((360, 640))
    cut_png = whole_png[:len(whole_png) // 2]
    monkeypatch.setenv("REELFLOW_SPEECH", "elevenlabs,espeak")
    monkeypatch.setenv("REELFLOW_IMAGE", "gemini-image,local")
    monkeypatch.setenv("REELFLOW_VIDEO", "veo,replicate:wan-video/wan-2.2-i2v-fast")
    for provider in ("elevenlabs", "gemini-image", "veo"):
        set_options(monkeypatch, provider, attempts=2)
    cloud["eleven"].server.fail("POST", TTS_PATH, [truncated_audio_reply()] * 2)
    cloud["google"].fail("POST", GENERATE.replace("(?P<model>[^/:]+)", "gemini-2.5-flash-image"),
                         [Response.json({"candidates": [{"content": {"role": "model", "parts": [
                             {"inlineData": {"mimeType": "image/png",
                                             "data": base64.b64encode(cut_png).decode()}}]},
                             "finishReason": "STOP"}]})] * 2)
    cloud["google"].outcomes = ["truncated", "short"]

    summary = make_video(topic="tide pools", scenes=1)

    nodes = {node["id"]: node for node in json.loads(summary.manifest.read_text())["nodes"]}
    assert (nodes["s001-l1-tts"]["provider"], nodes["s001-image"]["provider"],
            nodes["s001-clip"]["provider"]) == ("espeak", "local", "replicate")
    store = ArtifactStore(workspace["store"])
    blobs = [path.read_bytes() for path in (workspace["store"] / "blobs").glob("??/*")]
    assert not any(blob.startswith(cut_png) for blob in blobs)
    clip = store.lookup(nodes["s001-clip"]["key"])
    checks.clip(clip.parts["params"], {"clip": store.blob_path(clip.outputs["clip"].digest)})
    # Each node's cost is what its providers billed, the broken replies included.
    prices = price_table()
    text = Storyboard.model_validate_json(summary.storyboard.read_text()).scenes[0].lines[0].text
    # Every reply was a 200 (the faults included), so each one was billed.
    assert len(cloud["eleven"].server.calls("POST", TTS_PATH)) == 2
    assert len(cloud["google"].calls("POST", "gemini-2.5-flash-image:generateContent")) == 2
    assert nodes["s001-l1-tts"]["cost_usd"] == pytest.approx(
        2 * len(text) / 1000 * prices["elevenlabs"]["eleven_multilingual_v2"]["per_1k_characters"])
    assert nodes["s001-image"]["cost_usd"] == pytest.approx(
        2 * prices["gemini-image"]["gemini-2.5-flash-image"]["per_image"])
    assert nodes["s001-clip"]["cost_usd"] == pytest.approx(
        cloud["google"].billed["video_seconds"]
        * prices["veo"]["veo-3.0-fast-generate-001"]["per_video_second"]
        + 81 / 16 * prices["replicate"]["wan-video/wan-2.2-i2v-fast"]["per_video_second"])
    assert cloud["google"].billed["video_seconds"] == 8  # two 4 s jobs, both paid
    assert summary.cost_usd == pytest.approx(sum(node["cost_usd"] for node in nodes.values()))
    assert any(w.startswith("clips: 1 of 1 served by replicate") for w in summary.warnings)
    assert any("mixes voices" not in w and w.startswith("voices: 1 of 1 served by espeak")
               for w in summary.warnings)

    again = make_video(topic="tide pools", scenes=1)  # every provider answers well now
    providers = served_by(again)
    assert (providers["s001-l1-tts"], providers["s001-image"], providers["s001-clip"]) == (
        "elevenlabs", "gemini-image", "veo")
    assert again.warnings == []


def test_a_malformed_voice_reply_once_keeps_one_voice_and_counts_its_cost(cloud):
    from tests.fakes.elevenlabs import TTS_PATH

    cloud["eleven"].server.fail("POST", TTS_PATH, [Response(200, b"{not json", {
        "Content-Type": "application/json"})])

    summary = make_video(topic="tide pools", scenes=2)

    assert {served_by(summary)[f"s00{i}-l1-tts"] for i in (1, 2)} == {"elevenlabs"}
    assert summary.warnings == []
    # Three replies billed (the unreadable one too), and the cost counts all three.
    assert len(cloud["eleven"].server.calls("POST", TTS_PATH)) == 3
    lines = [line.text for scene in Storyboard.model_validate_json(
        summary.storyboard.read_text()).scenes for line in scene.lines]
    voices = sum(node.cost_usd for node in summary.nodes if node.kind == "tts")
    assert any(voices == pytest.approx(0.30 * (sum(map(len, lines)) + len(dropped)) / 1000)
               for dropped in lines)  # whichever line's reply was the unreadable one


def test_missing_vertex_credentials_are_said_at_the_start_and_counted_and_strict_refuses(
        cloud, prefect_api_url, tmp_path):
    from tests.test_cli_input import run

    env = {**os.environ, "PREFECT_API_URL": prefect_api_url,
           "GOOGLE_APPLICATION_CREDENTIALS": str(tmp_path / "nowhere.json")}
    strict = run(["make", "tide pools", "--scenes", "1", "--strict"], env)
    assert strict.returncode == 2
    [line] = strict.stderr.strip().splitlines()
    assert line.startswith("error: --strict: clips: veo: no Google Cloud credentials: set "
                           "GOOGLE_APPLICATION_CREDENTIALS")
    assert not cloud["google"].calls("POST", "predictLongRunning")

    result = run(["make", "tide pools", "--scenes", "1", "--json"], env)

    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if line.startswith("warning:")]
    assert len(warned) == 1 and warned[0].startswith("warning: clips: veo: no Google Cloud "
                                                     "credentials")
    assert warned[0].endswith("clips will use replicate:wan-video/wan-2.2-i2v-fast")
    summary = json.loads(result.stdout)
    assert summary["warnings"][0] == warned[0].removeprefix("warning: ")
    assert any(w.startswith("clips: 1 of 1 served by replicate/wan-video/wan-2.2-i2v-fast "
                            "because veo/") for w in summary["warnings"])


def test_a_failed_run_says_so_in_a_few_lines_without_a_traceback(cloud, prefect_api_url):
    from tests.test_cli_input import run

    cloud["google"].outcomes = ["error"]
    env = {**os.environ, "PREFECT_API_URL": prefect_api_url, "REELFLOW_VIDEO": "veo"}

    result = run(["make", "tide pools", "--scenes", "1"], env)

    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    said = [line for line in result.stderr.splitlines()
            if line.startswith(("error:", "log:", "run the same"))]
    assert said[0].startswith("error: s001-clip: veo/veo-3.0-fast-generate-001 failed: veo: "
                              "operation ") and "internal error" in said[0]
    assert said[1].startswith("run the same command again") and said[2].startswith("log: ")
    log = Path(said[2].removeprefix("log: ")).read_text()
    assert "Traceback" in log  # the whole story is kept, off the terminal


def test_a_line_elevenlabs_cannot_speak_is_spoken_by_espeak_and_the_video_says_it_mixes_voices(
        cloud, monkeypatch):
    """eSpeak speaks at 22.05 kHz, ElevenLabs at 24 kHz: one video's narration has one rate."""
    from tests.fakes.elevenlabs import TTS_PATH

    set_options(monkeypatch, "elevenlabs", attempts=1)
    cloud["eleven"].server.fail("POST", TTS_PATH, [Response.json(
        {"detail": {"status": "voice_not_found", "message": "no such voice"}}, status=400)])

    summary = make_video(topic="tide pools", scenes=2)

    voices = {served_by(summary)[f"s00{i}-l1-tts"] for i in (1, 2)}
    assert voices == {"elevenlabs", "espeak"}
    assert any("mixes voices (elevenlabs: 1, espeak: 1)" in w for w in summary.warnings) or any(
        "mixes voices (espeak: 1, elevenlabs: 1)" in w for w in summary.warnings), summary.warnings
    info = probe(summary.video)
    assert info.has_audio and info.duration > 4
