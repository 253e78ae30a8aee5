"""Lip-sync: a lipsync node after the clip of each scene where a character speaks or sings on
screen. Against a fake Replicate lip-sync model, the audio sent for a music video's scene is
the track from the sum of the earlier scenes' lengths, and moving a scene along the track
syncs again only the scenes it moved; offline, the speaking sprite's mouth opens with the
voice (real ffmpeg, real eSpeak, a real Prefect server)."""

from __future__ import annotations

import io
import json
import wave
from pathlib import Path

import numpy as np
import pytest

from cache import open_store
from config.bible import load_profiles
from config.secrets import MissingSecretError
from config.settings import load_settings
from flows.creative import Creative
from flows.options import RenderOptions
from flows.video import make_video, render_storyboard
from tasks.graph import video_graph
from tasks.ffmpeg import probe
from tasks.preflight import check_keys
from tasks.providers.base import BrokenOutput, LipsyncRequest
from tasks.providers.local_lipsync import mouth_open
from tasks.providers.local_planner import LocalPlanner
from tasks.providers.replicate import ReplicateLipsync
from tasks.stage import CastSprite, draw_stage
from tasks.storyboard import Character, Storyboard, VideoRequest
from tasks.subtitles import Turn
from tests.fakes.replicate import CREATE_PATH, FakeReplicate, sample_mp4
from tests.fakes.server import Response
from tests.test_cli_input import run
from tests.test_story import frame_at, pose_shown
from tests.tracks import click_track

RATE = 16_000
# Sung from 0.5 s to 5 s and from 9 s to 15 s of a 20 s track; nothing after.
LYRICS = "[00:00.50]Neon on the water\n[00:05.00]\n[00:09.00]We drive until the morning\n" \
         "[00:15.00]\n"


def tone_bursts(path: Path, bursts: list[tuple[float, float]], seconds: float,
                bass: bool = False, stereo: bool = False) -> None:
    """1 kHz bursts at `bursts` (start, end s), over a loud 60 Hz hum when `bass`; in stereo,
    the hum on the left and the voice on the right."""
    t = np.arange(round(seconds * RATE)) / RATE
    voice = sum(((t >= a) & (t < b)) for a, b in bursts) * np.sin(2 * np.pi * 1000 * t) * 0.3
    hum = 0.5 * np.sin(2 * np.pi * 60 * t) if bass else np.zeros_like(t)
    channels = [hum, voice] if stereo else [voice + hum]
    pcm = (np.stack(channels, axis=1) * 32767).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as out:
        out.setnchannels(len(channels))
        out.setsampwidth(2)
        out.setframerate(RATE)
        out.writeframes(pcm)


@pytest.mark.parametrize("stereo", [False, True])
def test_the_mouth_opens_with_the_voice_not_with_the_bass(tmp_path, stereo):
    bursts = [(0.5, 0.9), (1.25, 1.5), (2.0, 2.75)]
    tone_bursts(tmp_path / "voice.wav", bursts, 3.5, bass=True, stereo=stereo)
    opened = mouth_open(tmp_path / "voice.wav", 12, open_db=16)
    assert len(opened) == len(bursts)
    for (start, end), (a, b) in zip(opened, bursts):
        assert abs(start - a) <= 1 / 12 + 1e-6 and abs(end - b) <= 1 / 12 + 1e-6
    tone_bursts(tmp_path / "hum.wav", [], 2.0, bass=True)
    assert mouth_open(tmp_path / "hum.wav", 12, open_db=16) == []
    tone_bursts(tmp_path / "quiet.wav", [], 2.0)
    assert mouth_open(tmp_path / "quiet.wav", 12, open_db=16) == []


def test_the_replicate_model_gets_the_clip_and_the_audio_as_files_and_the_options(
        tls, tmp_path, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8-test")
    clip, audio = tmp_path / "3f9a0c", tmp_path / "window.wav"  # stored clips have no suffix
    clip.write_bytes(sample_mp4(16, 16))  # 1 s
    workdir = tmp_path / "work"
    workdir.mkdir()
    tone_bursts(audio, [(0.2, 1.5)], 2.5)
    with FakeReplicate(tls, polls=1) as fake:
        syncer = ReplicateLipsync({"base_url": fake.url, "poll_interval_s": 0.01,
                                   "temperature": 0.8, "active_speaker": True})
        result = syncer.sync(LipsyncRequest(clip=clip, audio=audio, fps=16), workdir)
        [prediction] = fake.predictions.values()
    assert prediction["model"] == "sync/lipsync-2"
    # Switches are sent only when on: a model without one refuses to hear of it.
    assert {key: value for key, value in prediction["input"].items()
            if key not in ("video", "audio")} == {
        "temperature": 0.8, "active_speaker": True, "sync_mode": "bounce"}
    assert fake.lipsynced == [{"video": clip.read_bytes(), "audio": audio.read_bytes()}]
    assert result.usage.video_seconds == pytest.approx(2.5)
    assert probe(result.video).duration == pytest.approx(2.5, abs=0.1)  # bounced to the audio

    # A clip that decodes whole but stops before its audio is cut short: asked for again.
    with FakeReplicate(tls, polls=1) as fake:
        fake.output = fake.file_url("short.mp4", sample_mp4(16, 16), "video/mp4")
        with pytest.raises(BrokenOutput, match="lasts 1.00 s, its audio 2.50 s") as caught:
            syncer.options.base_url = fake.url
            syncer.sync(LipsyncRequest(clip=clip, audio=audio, fps=16), workdir)
    assert caught.value.usage.video_seconds == pytest.approx(2.5)  # billed all the same


def test_with_lip_sync_off_its_providers_keys_are_not_asked_for(monkeypatch):
    monkeypatch.delenv("REPLICATE_API_TOKEN", raising=False)
    settings = load_settings(lipsync=["replicate"], sync_lips=False)
    assert check_keys(settings) == []
    with pytest.raises(MissingSecretError, match="REPLICATE_API_TOKEN"):
        check_keys(settings.model_copy(update={"sync_lips": True}))


def test_lip_sync_is_a_node_where_someone_speaks_or_sings_on_screen_unless_turned_off(
        tmp_path):
    characters = load_profiles(Character)
    request = VideoRequest(topic="why cats love boxes", scenes=3,
                           characters=[characters["mira"], characters["otto"]])
    board = LocalPlanner().plan(request).storyboard
    synced = {step.scene for step in video_graph(board) if step.kind == "lipsync"}
    assert synced == {scene.id for scene in board.scenes if scene.cast and scene.lines}
    assert not [step for step in video_graph(board, sync_lips=False) if step.kind == "lipsync"]
    first = board.ordered_scenes()[0]
    quiet = board.model_copy(update={"scenes": [
        scene.model_copy(update={"lipsync": scene.id != first.id}) for scene in board.scenes]})
    assert {step.scene for step in video_graph(quiet) if step.kind == "lipsync"} == \
        synced - {first.id}
    segment = next(step for step in video_graph(board)
                   if step.kind == "segment" and f"{first.id}-clip" in step.needs)
    assert f"{first.id}-lipsync" in segment.needs


def test_no_lipsync_on_the_command_line_leaves_the_node_out(cli_env):
    planned = run(["plan", "why cats love boxes", "--scenes", "2", "--cast", "mira,otto"],
                  cli_env)
    assert planned.returncode == 0, planned.stderr
    args = ["render", "-", "--dry-run", "--json"]
    on, off = (run(given, cli_env, stdin=planned.stdout) for given in
               (args, [*args, "--no-lipsync"]))
    assert on.returncode == off.returncode == 0, on.stderr + off.stderr
    kinds = [[node["kind"] for node in json.loads(done.stdout)["nodes"]] for done in (on, off)]
    assert kinds[0].count("lipsync") == 2 and "lipsync" not in kinds[1]


def samples(wav: bytes) -> np.ndarray:
    with wave.open(io.BytesIO(wav)) as reader:
        data = np.frombuffer(reader.readframes(reader.getnframes()), "<i2")
        return data.reshape(-1, reader.getnchannels())


@pytest.mark.usefixtures("prefect_api_url")
def test_each_singing_scene_gets_its_part_of_the_track_and_an_edit_resyncs_what_it_moved(
        tls, workspace, tmp_path, monkeypatch):
    click_track(tmp_path / "song.wav", 120, 20)
    (tmp_path / "song.lrc").write_text(LYRICS)
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8-test")
    monkeypatch.setenv("REELFLOW_LIPSYNC", "replicate")
    with FakeReplicate(tls, polls=1) as fake:
        monkeypatch.setenv("REELFLOW_PROVIDER_OPTIONS", json.dumps(
            {"replicate": {"base_url": fake.url, "poll_interval_s": 0.01}}))
        fake.outcomes.append("truncated")  # a clip cut short is asked for again, never kept
        summary = make_video(topic="a city at night", cast=["mira"], music=False,
                             creative=Creative(mode="music-video", track=tmp_path / "song.wav",
                                               lyrics=tmp_path / "song.lrc"))
        board = Storyboard.model_validate_json(summary.storyboard.read_text())
        scenes = board.ordered_scenes()
        singing = [scene.id for scene in scenes if board.voiced(scene)]
        assert 3 <= len(singing) < len(scenes)  # the last scenes are not sung
        store = open_store(str(workspace["store"]))
        manifest = json.loads(summary.manifest.read_text())
        track = next(node for node in manifest["nodes"] if node["kind"] == "track")
        song = samples(store.blob_path(track["outputs"]["audio"]).read_bytes())
        # Each window is the track from the sum of the scenes' lengths before it.
        assert len(fake.lipsynced) == len(singing) + 1 == fake.succeeded
        starts = dict(zip([s.id for s in scenes],
                          np.cumsum([0.0, *(s.duration for s in scenes[:-1])])))
        sent = [samples(call["audio"]) for call in fake.lipsynced]  # in the order they ran
        for scene_id in singing:
            start = starts[scene_id]
            end = start + board.scene(scene_id).duration
            window = song[round(start * 48_000):round(end * 48_000)]
            assert any(np.array_equal(audio, window) for audio in sent), scene_id
        clips = {node["scene"]: node["outputs"]["clip"] for node in manifest["nodes"]
                 if node["kind"] == "clip"}

        # Scene 1 ends a bar earlier: every later scene moves along the track.
        first = scenes[0]
        edited = board.model_copy(update={"scenes": [
            scene.model_copy(update={"duration": scene.duration - 2.0})
            if scene.id == first.id else scene for scene in board.scenes]})
        again = render_storyboard(edited, RenderOptions())
        redone = json.loads(again.manifest.read_text())
    made = {node["id"] for node in redone["nodes"] if node["status"] == "generated"
            and node["kind"] in ("lipsync", "clip", "image", "reference", "sprite")}
    resynced = {f"{scene_id}-lipsync" for scene_id in singing}
    assert made == resynced | {f"{first.id}-clip"}  # its clip is shorter; no other is made
    assert len(fake.lipsynced) == 2 * len(singing) + 1
    # The clips the first lip-sync was made from are still in the store, untouched.
    for digest in clips.values():
        assert store.blob_path(digest).is_file()
    synced = {node["scene"]: node["outputs"]["clip"] for node in redone["nodes"]
              if node["kind"] == "lipsync"}
    assert not set(synced.values()) & set(clips.values())


@pytest.mark.usefixtures("prefect_api_url")
def test_a_model_that_refuses_an_option_hands_the_scene_to_the_offline_mouths_and_says_so(
        tls, workspace, monkeypatch):
    monkeypatch.setenv("REPLICATE_API_TOKEN", "r8-test")
    monkeypatch.setenv("REELFLOW_LIPSYNC", "replicate,local")
    refusal = Response.json({"title": "Input validation failed", "status": 422, "detail":
                             "active_speaker: Additional property is not allowed"}, 422)
    with FakeReplicate(tls, polls=1) as fake:
        monkeypatch.setenv("REELFLOW_PROVIDER_OPTIONS", json.dumps({"replicate": {
            "base_url": fake.url, "poll_interval_s": 0.01},
            "lipsync:replicate": {"active_speaker": True}}))
        fake.server.fail("POST", CREATE_PATH, [refusal] * 4)
        summary = make_video(topic="why cats love boxes", scenes=1, cast=["mira", "otto"],
                             music=False)
    manifest = json.loads(summary.manifest.read_text())
    [node] = [node for node in manifest["nodes"] if node["kind"] == "lipsync"]
    assert (node["provider"], set(node["outputs"])) == ("local", {"mouth"})
    assert fake.succeeded == 0 and len(fake.server.calls("POST", CREATE_PATH)) == 1  # a 4xx
    [warning] = [w for w in manifest["warnings"] if w.startswith("lip-sync:")]
    assert "served by local/loudness because" in warning and "422" in warning


def test_only_drawn_mouths_flap_a_badge_cut_from_a_reference_talks_all_through(tmp_path):
    mira = load_profiles(Character)["mira"]
    drawn = CastSprite("mira", Path(mira.sprites["talking"].path),
                       Path(mira.sprites["listening"].path), drawn_mouth=True)
    badge = CastSprite("kit", drawn.talking, drawn.listening)  # as if cut from a reference
    turns = [Turn("mira", 0, 0.0, 2.0), Turn("kit", 5, 2.5, 4.0)]
    mouth = [(0.25, 0.5), (1.0, 1.75), (2.75, 3.0)]
    stage = draw_stage([drawn, badge], turns, 360, 640, tmp_path / "stage.png", mouth=mouth)
    assert stage.windows == (((0.25, 0.5), (1.0, 1.75)), ((2.5, 4.0),))


@pytest.mark.usefixtures("prefect_api_url")
def test_offline_the_speaking_sprite_opens_its_mouth_with_the_voice(workspace, monkeypatch):
    monkeypatch.setenv("REELFLOW_SHORT_SIDE", "360")
    summary = make_video(topic="why cats love boxes", scenes=1, cast=["mira", "otto"],
                         music=False)
    board = Storyboard.model_validate_json(summary.storyboard.read_text())
    [scene] = board.scenes
    manifest = json.loads(summary.manifest.read_text())
    [node] = [node for node in manifest["nodes"] if node["kind"] == "lipsync"]
    store = open_store(str(workspace["store"]))
    opened = json.loads(store.blob_path(node["outputs"]["mouth"]).read_bytes())
    sprites = {c.id: CastSprite(c.id, Path(c.sprites["talking"].path),
                                Path(c.sprites["listening"].path))
               for c in map(board.character, scene.cast)}
    cast = [sprites[member] for member in scene.cast]
    stage = draw_stage(cast, [Turn(member.id, 0, 0.0, 1.0) for member in cast], 360, 640,
                       workspace["out"] / "layout.png")

    def poses(seconds: float) -> list[str]:
        frame = frame_at(summary.video, seconds)
        return [pose_shown(frame, slot, member) for member, slot in zip(cast, stage.slots)]

    frame = 1 / 12
    flaps = [(a, b) for a, b in opened if b - a >= 3 * frame]
    gaps = [(b, c) for (_, b), (c, _) in zip(opened, opened[1:]) if c - b >= 3 * frame]
    assert len(flaps) >= 3 and len(gaps) >= 2
    for a, b in flaps:  # one of them speaks: their mouth is open
        assert sorted(poses((a + b) / 2)) == ["listening", "talking"], (a, b)
    for b, c in gaps:  # between syllables every mouth is closed
        assert poses((b + c) / 2) == ["listening", "listening"], (b, c)
