"""Stories with characters, end to end: dialogue, voices, sprites, references, and edits that
redo only what they touch (real eSpeak, real ffmpeg, a real Prefect server, the CLI)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cache import open_store
from config.bible import load_profiles
from flows.video import make_video, render_storyboard
from tasks.ffmpeg import ffmpeg_exe, probe
from tasks.stage import CastSprite, draw_stage
from tasks.storyboard import Character, Storyboard
from tasks.subtitles import Turn
from tests.composing import segments_reading
from tests.fakes.google import FakeGoogle, inline_images, prompt_text
from tests.pacing import scene_seconds
from tests.test_cli_input import REELFLOW

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")

FFMPEG_FRAME_TIMEOUT_S = 60


def frame_at(video: Path, seconds: float) -> np.ndarray:
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", f"{seconds:.3f}", "-i", str(video),
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True, timeout=FFMPEG_FRAME_TIMEOUT_S).stdout
    info = probe(video)
    return np.frombuffer(raw, np.uint8).reshape(info.height, info.width, 3).astype(int)


def dialogue_events(ass: str) -> list[tuple[float, float, str]]:
    """(start, end, style) of each caption."""
    events = []
    for line in ass.splitlines():
        if line.startswith("Dialogue:"):
            _, start, end, style = line.split(",", 4)[:4]
            events.append((_seconds(start), _seconds(end), style))
    return events


def _seconds(clock: str) -> float:
    hours, minutes, seconds = clock.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def test_a_dialogue_gives_each_speaker_a_voice_a_caption_style_and_a_talking_sprite(monkeypatch):
    monkeypatch.setenv("REELFLOW_SHORT_SIDE", "360")
    summary = make_video(topic="why cats love boxes", scenes=2, cast=["mira", "otto"], music=False)

    board = Storyboard.model_validate_json(summary.storyboard.read_text())
    mira, otto = board.character("mira"), board.character("otto")
    manifest = json.loads(summary.manifest.read_text())
    voices = {}
    for node in (n for n in manifest["nodes"] if n["kind"] == "tts"):
        scene = next(s for s in board.scenes if s.id == node["scene"])
        number = int(re.match(r".*-l(\d+)-tts$", node["id"])[1])
        voices.setdefault(scene.lines[number - 1].speaker, set()).add(node["params"]["voice"])
    assert voices == {"mira": {mira.voices["espeak"]}, "otto": {otto.voices["espeak"]}}
    assert mira.voices["espeak"] != otto.voices["espeak"]

    ass = (summary.video.parent / "subtitles.ass").read_text()
    assert "Style: Caption-mira," in ass and "Style: Caption-otto," in ass
    events = dialogue_events(ass)
    assert {style for *_, style in events} == {"Caption-mira", "Caption-otto"}
    for line in (line for line in ass.splitlines() if line.startswith("Dialogue:")):
        style, text = line.split(",")[3], line.split(",", 9)[9]
        assert text.startswith("{\\k0}" + {"Caption-mira": "Mira", "Caption-otto": "Otto"}[style] + ": ")

    # Where the stage puts each sprite in a 360x640 frame (its layout, not its timing).
    sprites = {c.id: CastSprite(c.id, Path(c.sprites["talking"].path),
                                Path(c.sprites["listening"].path)) for c in (mira, otto)}
    cast = [sprites[member] for member in board.ordered_scenes()[0].cast]
    turns = [Turn(member.id, 0, 0.0, 1.0) for member in cast]
    stage = draw_stage(cast, turns, 360, 640, summary.video.parent.parent / "layout.png")
    slots = dict(zip((m.id for m in cast), stage.slots))
    first_scene_end = scene_seconds(manifest, open_store(os.environ["REELFLOW_STORE"]))[
        board.ordered_scenes()[0].id]
    for speaker in ("mira", "otto"):
        start, end = max(((s, e) for s, e, style in events if style == f"Caption-{speaker}"
                          and e < first_scene_end), key=lambda span: span[1] - span[0])
        frame = frame_at(summary.video, (start + end) / 2)
        for member, slot in slots.items():
            pose = pose_shown(frame, slot, sprites[member])
            assert pose == ("talking" if member == speaker else "listening"), (speaker, member)


def pose_shown(frame: np.ndarray, slot, sprite: CastSprite) -> str:
    """Which of the sprite's pictures the frame shows in `slot`, judged where they differ."""
    region = frame[slot.y:slot.y + slot.height, slot.x:slot.x + slot.width]
    poses = {}
    for pose in ("talking", "listening"):
        with Image.open(getattr(sprite, pose)) as picture:
            poses[pose] = np.asarray(picture.convert("RGBA").resize(
                (slot.width, slot.height), Image.Resampling.LANCZOS)).astype(int)
    differs = (np.abs(poses["talking"][..., :3] - poses["listening"][..., :3]).sum(axis=2) > 90) \
        & (poses["talking"][..., 3] > 200)
    assert differs.sum() > 10, "the sprites should differ somewhere"
    distance = {pose: np.abs(region[differs] - pixels[differs][:, :3]).mean()
                for pose, pixels in poses.items()}
    return min(distance, key=distance.get)


CAST_FILES = {
    "kit": "id: kit\nname: Kit\nappearance: a tall girl with short green hair\n"
           "wardrobe: yellow raincoat\ncatchphrases: [\"On it!\"]\nvoices: {espeak: en-us+f2}\n",
    "bo": "id: bo\nname: Bo\nappearance: a round little man with a moustache\n"
          "voices: {espeak: en-us+m2}\n",
    "zed": "id: zed\nname: Zed\nappearance: a lanky teenager with freckles\n",
}


def statuses(completed: subprocess.CompletedProcess) -> dict[str, str]:
    assert completed.returncode == 0, completed.stderr
    return {node["id"]: node["status"] for node in json.loads(completed.stdout)["nodes"]}


def generated(completed: subprocess.CompletedProcess) -> set[str]:
    return {node for node, status in statuses(completed).items() if status == "generated"}


def test_characters_dropped_in_a_folder_are_used_and_each_edit_redoes_only_what_it_touches(
        cli_env, prefect_api_url, tmp_path):
    env = {**cli_env, "PREFECT_API_URL": prefect_api_url}
    folder = tmp_path / "my-cast"
    folder.mkdir()
    for name, text in CAST_FILES.items():
        (folder / f"{name}.yaml").write_text(text)

    def reelflow(*args):
        return subprocess.run([REELFLOW, *args, "--json"], capture_output=True, text=True,
                              env=env, timeout=300)

    made = reelflow("make", "Why cats love boxes", "--cast", "kit,bo,zed", "--characters",
                    str(folder), "--places", "workshop", "--scenes", "3")
    first = statuses(made)
    assert {"ref-kit", "ref-bo", "ref-zed", "ref-workshop", "sprite-kit"} <= set(first)
    assert set(first.values()) == {"generated"}
    path = Path(json.loads(made.stdout)["storyboard"])
    board = json.loads(path.read_text())
    casts = {scene["id"]: scene["cast"] for scene in board["scenes"]}
    assert casts == {"s001": ["kit", "bo"], "s002": ["bo", "zed"], "s003": ["kit", "zed"]}

    board["scenes"][1]["visual_prompt"] = "a cardboard castle in the rain"
    path.write_text(json.dumps(board))
    assert generated(reelflow("render", str(path))) == {
        "s002-image", "s002-clip", "s002-lipsync", *segments_reading(board, "s002"), "compose",
        "publish"}

    bo = next(c for c in board["characters"] if c["id"] == "bo")
    bo["appearance"] = "a round little man with a red beard"
    path.write_text(json.dumps(board))
    # Bo's reference (and the sprites cut from it), then the scenes Bo is in (their clips'
    # lip-sync too), and nothing else.
    assert generated(reelflow("render", str(path))) == {
        "ref-bo", "sprite-bo", "s001-image", "s001-clip", "s001-lipsync", "s002-image",
        "s002-clip", "s002-lipsync", *segments_reading(board, "s001", "s002"), "compose",
        "publish"}

    board["scenes"][2]["lines"][1]["text"] = "Boxes are castles, obviously."
    path.write_text(json.dumps(board))
    assert generated(reelflow("render", str(path))) == {
        "s003-l2-tts", "s003-lipsync", *segments_reading(board, "s003"), "compose", "publish"}


def test_every_keyframe_is_drawn_from_its_casts_and_locations_references_and_none_waits_for_another(
        tls, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "canary-gemini-0001")
    monkeypatch.setenv("REELFLOW_IMAGE", "gemini-image")
    # One attempt a keyframe: the fake's pictures show no one (tests/test_gates.py retries).
    monkeypatch.setenv("REELFLOW_MAX_ATTEMPTS", "1")
    characters = load_profiles(Character)
    board = json.loads(make_storyboard_json(characters, scenes=12))
    in_flight_together = 3
    together = threading.Barrier(in_flight_together, timeout=120)
    keyframe_calls = []
    lock = threading.Lock()

    def hold_the_first_keyframes(request):
        if not inline_images(request):  # a reference sheet, not a keyframe
            return
        with lock:
            keyframe_calls.append(request)
            waits = len(keyframe_calls) <= in_flight_together
        if waits:  # answered only once three keyframe requests are open at the same time
            together.wait()

    with FakeGoogle(tls) as google:
        google.on_image = hold_the_first_keyframes
        monkeypatch.setenv("REELFLOW_PROVIDER_OPTIONS",
                           json.dumps({"gemini-image": {"base_url": google.url}}))
        summary = render_storyboard(Storyboard.model_validate(board))

    assert not together.broken and summary.placeholders == 0
    assert len(keyframe_calls) == 12
    storyboard = Storyboard.model_validate(board)
    for scene in storyboard.scenes:
        [call] = [c for c in keyframe_calls if scene.visual_prompt in prompt_text(c)]
        assert len(inline_images(call)) == len(scene.cast) + 1  # its cast, then its location
        for member in scene.cast:
            assert storyboard.character(member).appearance in prompt_text(call)
        assert storyboard.location(scene.location).description in prompt_text(call)


def make_storyboard_json(characters: dict[str, Character], scenes: int) -> str:
    """A storyboard of `scenes` scenes, each with two of the three shipped characters and one
    of two locations."""
    from config.bible import load_profiles as profiles
    from tasks.storyboard import Location

    places = profiles(Location)
    ids = ["mira", "otto", "juno"]
    board = {
        "title": "Twelve scenes",
        "characters": [characters[i].model_dump(mode="json") for i in ids],
        "locations": [places[p].model_dump(mode="json") for p in ("workshop", "rooftop")],
        "scenes": [{
            "id": f"s{n + 1:03d}", "order": n, "duration": 2.5,
            "cast": [ids[n % 3], ids[(n + 1) % 3]],
            "location": ("workshop", "rooftop")[n % 2],
            "visual_prompt": f"scene number {n + 1} of the story",
            "lines": [{"speaker": ids[n % 3], "text": f"Line {n + 1}."}],
        } for n in range(scenes)],
    }
    return json.dumps(board)
