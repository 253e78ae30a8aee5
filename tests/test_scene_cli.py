"""Shaping a published video scene by scene through the CLI, as a person does: each operation
makes a version that generates exactly the nodes it touched, the published video shows the
scenes in their new order and length (decoded), and every version comes back from the store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from cache import open_store
from cache.keys import file_digest
from tasks.ffmpeg import probe
from tasks.storyboard import Storyboard
from tests.composing import segments_changed
from tests.pacing import scene_seconds
from tests.test_cli_input import run
from tests.test_story import frame_at

@pytest.fixture
def env(cli_env: dict[str, str], prefect_api_url: str) -> dict[str, str]:
    return {**cli_env, "PREFECT_API_URL": prefect_api_url}


class Video:
    """The published video a command printed, read back."""

    def __init__(self, completed, env: dict[str, str]):
        assert completed.returncode == 0, completed.stderr[-3000:]
        self.summary = json.loads(completed.stdout)
        self.path = Path(self.summary["video"])
        self.folder = self.path.parent
        self.board = Storyboard.model_validate_json((self.folder / "storyboard.json").read_text())
        self.manifest = json.loads((self.folder / "manifest.json").read_text())
        self.store = open_store(env["REELFLOW_STORE"])

    @property
    def generated(self) -> set[str]:
        return {node["id"] for node in self.summary["nodes"] if node["status"] == "generated"
                and node["kind"] != "publish"}

    def order(self) -> list[str]:
        return [scene.id for scene in self.board.ordered_scenes()]

    def lengths(self) -> dict[str, float]:
        """Each scene's length on screen: its speech plus the pad, or its trim (never less
        than its speech)."""
        paced = scene_seconds(self.manifest, self.store)
        pad = next(n for n in self.manifest["nodes"] if n["kind"] == "compose")["params"]["pad"]
        return {scene.id: (max(scene.trim.end - scene.trim.start, paced[scene.id] - pad)
                           if scene.trim else paced[scene.id])
                for scene in self.board.scenes}

    def clip(self, scene: str) -> Path:
        node = next(n for n in self.manifest["nodes"] if n["id"] == f"{scene}-clip")
        return self.store.blob_path(node["outputs"]["clip"])

    def check_picture(self) -> None:
        """Its duration is the sum of its scenes', and mid each scene the picture (above the
        captions) is that scene's clip at that moment, closer to it than to any other's."""
        lengths = self.lengths()
        assert probe(self.path).duration == pytest.approx(sum(lengths.values()), abs=0.15)
        start = 0.0
        clips = {scene: self.clip(scene) for scene in self.order()}
        for scene in self.board.ordered_scenes():
            middle = lengths[scene.id] / 2
            shown = frame_at(self.path, start + middle)
            into = (scene.trim.start if scene.trim else 0) + middle
            distance = {other: _distance(shown, frame_at(path, min(into, probe(path).duration - 0.1)))
                        for other, path in clips.items()}
            assert min(distance, key=distance.get) == scene.id, (scene.id, distance)
            start += lengths[scene.id]


def _distance(one: np.ndarray, other: np.ndarray) -> float:
    top = one.shape[0] * 6 // 10  # above the captions
    return float(np.abs(one[:top] - other[:top]).mean())


def test_a_video_is_shaped_scene_by_scene_and_every_version_comes_back(env, workspace):
    def reelflow(*args: str) -> Video:
        return Video(run([*args, "--json"], env), env)

    v1 = reelflow("make", "how lighthouses work", "--scenes", "3")
    assert v1.order() == ["s001", "s002", "s003"]
    v1.check_picture()

    v2 = reelflow("scene", "add", str(v1.folder), "--after", "s001",
                  "--narration", "A lens gathers the light into one beam.")
    assert v2.order() == ["s001", "s004", "s002", "s003"]
    assert v2.generated == {"s004-l1-tts", "s004-image", "s004-clip",
                            *segments_changed(v1.board, v2.board, "s004"), "compose"}
    v2.check_picture()

    v3 = reelflow("scene", "delete", str(v2.folder), "s002")
    assert v3.order() == ["s001", "s004", "s003"]
    assert v3.generated == {*segments_changed(v2.board, v3.board), "compose"}

    v4 = reelflow("scene", "move", str(v3.folder), "s003", "--first")
    assert v4.order() == ["s003", "s001", "s004"]
    assert v4.generated == {*segments_changed(v3.board, v4.board), "compose"}
    v4.check_picture()

    v5 = reelflow("scene", "edit", str(v4.folder), "s004", "--narration",
                  "The beam turns, so ships see it blink.")
    assert v5.generated == {"s004-l1-tts", *segments_changed(v4.board, v5.board, "s004"),
                            "compose"}

    clip_seconds = probe(v5.clip("s001")).duration
    v6 = reelflow("scene", "trim", str(v5.folder), "s001", "--start", "0.5",
                  "--end", f"{clip_seconds - 0.25:.2f}")
    assert not {node for node in v6.generated if node.endswith(("-tts", "-image", "-clip"))}
    assert v6.generated == {*segments_changed(v5.board, v6.board, "s001"), "compose"}
    before, after = v5.lengths()["s001"], v6.lengths()["s001"]
    assert probe(v6.path).duration - probe(v5.path).duration == pytest.approx(
        after - before, abs=1 / 12 + 0.05)  # a frame, and the AAC end's slack
    v6.check_picture()

    v7 = reelflow("scene", "retake", str(v6.folder), "s004")
    assert v7.generated == {"s004-image", "s004-clip",
                            *segments_changed(v6.board, v7.board, "s004"), "compose"}
    take = {v.board.scene("s004").takes.image: next(
        n["outputs"]["image"] for n in v.manifest["nodes"] if n["id"] == "s004-image")
        for v in (v6, v7)}
    assert take[1] != take[2]  # another picture
    takes = run(["scene", "takes", str(v7.folder), "s004"], env)
    assert "image take 1: made for version 1" not in takes.stdout  # s004 was added in 2
    assert "image take 2: made for version 7  (in use)" in takes.stdout

    v8 = reelflow("scene", "use", str(v7.folder), "s004", "--take", "1")
    assert v8.generated == set()  # take 1's picture, clip and segments are all stored
    assert file_digest(v8.path) == file_digest(v6.path)

    v9 = reelflow("revert", str(v8.folder), "--to", "1")
    assert v9.generated == set()
    assert v9.folder == v1.folder and file_digest(v9.path) == file_digest(v1.path)
    history = run(["history", str(v9.folder)], env).stdout.splitlines()
    assert len(history) == 9 and history[-1].startswith("*  9") and "revert to version 1" in history[-1]

    # gc keeps what every version in the history needs; --history-days 0 lets it go.
    assert run(["cache", "gc"], env).returncode == 0
    assert reelflow("revert", str(v9.folder), "--to", "5").generated == set()
    assert run(["cache", "gc", "--history-days", "0"], env).returncode == 0
    again = reelflow("revert", str(v5.folder), "--to", "2")
    assert {"s002-l1-tts", "s002-image", "s002-clip"} <= again.generated  # v2 had s002


BAD = {
    "unknown scene": (["scene", "delete", "{video}", "s404"], "delete scene: no scene 's404'"),
    "trim past the clip": (["scene", "trim", "{video}", "s001", "--start", "0", "--end", "99"],
                           "trim end: the clip of s001 lasts"),
    "trim too short": (["scene", "trim", "{video}", "s001", "--start", "1", "--end", "1.1"],
                       "trim end: a trim lasts at least 0.2 s"),
    "negative trim": (["scene", "trim", "{video}", "s001", "--start", "-1", "--end", "2"],
                      "trim start: Input should be greater than or equal to 0"),
    "take never made": (["scene", "use", "{video}", "s001", "--take", "4"],
                        "use take: s001 has no image take 4"),
    "after itself": (["scene", "move", "{video}", "s001", "--after", "s001"],
                     "move after: a scene cannot move after itself"),
    "unknown version": (["revert", "{video}", "--to", "7"], "revert version: no version 7"),
    "version zero": (["revert", "{video}", "--to", "0"],
                     "revert version: Input should be greater than or equal to 1"),
    "no such video": (["scene", "list", "nowhere-0000"], "video: no published storyboard"),
    "unknown media": (["scene", "use", "{video}", "s001", "--take", "1", "--media", "smell"],
                      "use media: Input should be 'image', 'clip' or 'speech'"),
}


def test_bad_scene_operations_exit_2_naming_the_field_and_change_nothing(env, workspace):
    video = Video(run(["make", "paper lanterns", "--scenes", "1", "--json"], env), env).folder
    for operation in (["add", "--first", "--narration", "Lanterns glow."], ["delete", "s002"]):
        made = run(["scene", operation[0], str(video), *operation[1:], "--no-render"], env)
        assert made.returncode == 0 and "(not rendered)" in made.stdout, made.stderr
    assert "version 3 (not rendered): delete s002" in made.stdout

    def snapshot() -> tuple:
        store = open_store(str(workspace["store"]))
        return (sorted(p.name for p in (workspace["store"] / "blobs").rglob("*") if p.is_file()),
                sorted(record.key for record in store.records()),
                sorted(kept.name for kept in store._kept()))

    stored, history = snapshot(), (video / "history.json").read_bytes()
    for args, message in BAD.values():
        refused = run([arg.format(video=video) for arg in args], env)
        assert refused.returncode == 2, (args, refused.stderr)
        assert refused.stderr.startswith(f"error: {message}"), (args, refused.stderr)
        assert len(refused.stderr.strip().splitlines()) == 1
    last = run(["scene", "delete", str(video), "s001"], env)  # after the unrendered delete
    assert last.returncode == 2 and "it is the only scene left" in last.stderr
    assert snapshot() == stored and (video / "history.json").read_bytes() == history
