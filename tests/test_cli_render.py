"""The CLI end to end, as a person uses it: plan | render, --json, edit and rerun, cache."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tasks.ffmpeg import probe
from tests.composing import segments_reading
from tests.test_cli_input import REELFLOW, run


@pytest.fixture
def env(cli_env: dict[str, str], prefect_api_url: str) -> dict[str, str]:
    return {**cli_env, "PREFECT_API_URL": prefect_api_url}


def statuses(summary: dict) -> dict[str, str]:
    return {node["id"]: node["status"] for node in summary["nodes"]}


def test_plan_piped_into_render_publishes_a_video(env, workspace):
    plan = subprocess.Popen([REELFLOW, "plan", "why the sky is blue", "--scenes", "2"],
                            stdout=subprocess.PIPE, env=env)
    render = subprocess.run([REELFLOW, "render", "-", "--json"], stdin=plan.stdout,
                            capture_output=True, text=True, env=env, timeout=300)
    plan.wait(timeout=60)
    assert (plan.returncode, render.returncode) == (0, 0), render.stderr

    summary = json.loads(render.stdout)
    assert set(summary) == {"video", "storyboard", "manifest", "url", "nodes", "generated",
                            "cached", "placeholders", "cost_usd", "saved_usd", "warnings",
                            "review", "drift", "routing"}
    assert (summary["review"], summary["routing"]) == ([], None)  # nothing flagged, no router
    assert summary["warnings"] == []  # offline, nothing falls back
    assert summary["url"] is None  # published to a folder only
    assert {node["kind"] for node in summary["nodes"]} == {"tts", "image", "clip", "segment",
                                                           "compose", "publish"}
    assert all(set(node) == {"id", "kind", "scene", "status", "cost_usd"}
               for node in summary["nodes"])
    assert probe(workspace["out"] / summary["video"]).has_audio


def test_editing_the_published_storyboard_reruns_only_that_scene(env, workspace):
    made = run(["make", "tea ceremonies", "--scenes", "3", "--json"], env)
    assert made.returncode == 0, made.stderr
    first = json.loads(made.stdout)
    assert statuses(first)["plan"] == "generated"

    board_path = workspace["out"] / first["storyboard"]
    board = json.loads(board_path.read_text())
    board["scenes"][2]["lines"][0]["text"] = "Matcha is whisked, never stirred."
    board_path.write_text(json.dumps(board))
    rerun = run(["render", str(board_path), "--json"], env)
    assert rerun.returncode == 0, rerun.stderr

    generated = {k for k, v in statuses(json.loads(rerun.stdout)).items() if v == "generated"}
    scene = board["scenes"][2]["id"]
    assert generated == {f"{scene}-l1-tts", *segments_reading(board, scene), "compose", "publish"}


def test_cache_commands_report_verify_and_collect(env, workspace):
    made = run(["make", "paper cranes", "--scenes", "1", "--json"], env)
    assert made.returncode == 0, made.stderr

    stats = run(["cache", "stats"], env)
    # plan, tts, image, clip, segment, compose, and the keyframe's and the clip's gates
    assert "nodes     8" in stats.stdout
    listing = run(["cache", "ls"], env)
    kinds = ("plan", "tts", "image", "clip", "segment", "compose", "gate")
    assert sum(kind in listing.stdout for kind in kinds) == 7
    verify = run(["cache", "verify"], env)
    assert verify.returncode == 0 and "0 problems" in verify.stdout

    nothing = run(["cache", "gc"], env)
    assert nothing.stdout.startswith("removed 0 nodes"), nothing.stdout  # all are published
    expired = run(["cache", "gc", "--older-than", "0"], env)
    assert "expired 1 manifests" in expired.stdout and "removed 8 nodes" in expired.stdout
    assert run(["cache", "stats"], env).stdout.count("nodes     0") == 1


def test_the_store_is_reported_against_its_cap_and_gc_brings_it_under(env, workspace):
    for topic in ("paper cranes", "paper boats"):
        assert run(["make", topic, "--scenes", "1"], env).returncode == 0
    capped = {**env, "REELFLOW_STORE_MAX_MB": "0.001"}
    stats = run(["cache", "stats"], capped)
    assert "of a 0.001 MB cap" in stats.stdout and "over the cap" in stats.stdout
    video_bytes = sum(path.stat().st_size for path in (workspace["store"] / "blobs").glob("??/*"))
    cap = (video_bytes - 1) / 1e6  # a byte short of both videos: the newer one stays
    collected = run(["cache", "gc", "--max-mb", f"{cap:.6f}"], env)
    assert "expired 1 manifests" in collected.stdout, collected.stdout
    left = sum(path.stat().st_size for path in (workspace["store"] / "blobs").glob("??/*"))
    assert 0 < left <= cap * 1e6
    assert run(["cache", "verify"], env).returncode == 0
    refused = run(["cache", "gc", "--max-mb", "-1"], env)
    assert refused.returncode == 2 and refused.stderr.startswith("error: settings.store_max_mb")


def test_verify_finds_a_corrupted_blob(env, workspace):
    assert run(["make", "origami", "--scenes", "1"], env).returncode == 0
    blob = next((workspace["store"] / "blobs").glob("??/*"))
    blob.chmod(0o644)
    blob.write_bytes(b"bit rot")

    verify = run(["cache", "verify"], env)
    assert verify.returncode == 1 and "corrupt blob" in verify.stdout


def test_verify_media_finds_a_truncated_clip_in_the_store_and_repair_forgets_it(env, workspace):
    from cache.store import ArtifactStore

    assert run(["make", "origami", "--scenes", "1"], env).returncode == 0
    store = ArtifactStore(workspace["store"])
    clip = next(record for record in store.records() if record.kind == "clip")
    whole = store.read_bytes(clip.outputs["clip"])
    planted = store.put_bytes(whole[:len(whole) // 2], "video/mp4")
    store.record(clip.model_copy(update={"outputs": {"clip": planted}}))
    store.close()

    assert run(["cache", "verify"], env).returncode == 0  # its bytes are the ones it names
    found = run(["cache", "verify", "--media"], env)
    assert found.returncode == 1
    assert f"node {clip.key[:12]} (clip, kenburns) the clip" in found.stdout, found.stdout
    repaired = run(["cache", "verify", "--media", "--repair"], env)
    assert repaired.returncode == 1 and "forgotten" in repaired.stdout
    assert run(["cache", "verify", "--media"], env).returncode == 0

    again = run(["make", "origami", "--scenes", "1", "--json"], env)
    assert statuses(json.loads(again.stdout))["s001-clip"] == "generated"


def board_with_a_changed_picture(folder: Path) -> tuple[dict, Path]:
    """A storyboard whose character's picture changed after planning (its digest is not the
    file's): the node cutting the character's sprites refuses it, a failure of one node."""
    face = folder / "face.png"
    Image.new("RGB", (32, 32), "orange").save(face)
    picture = {"path": str(face), "digest": "0" * 64}
    return {"title": "T", "characters": [
        {"id": "ada", "name": "Ada", "sprites": {"talking": picture, "listening": picture}}],
        "scenes": [{"id": "intro", "order": 0, "lines": [{"speaker": "ada", "text": "Hello."}],
                    "visual_prompt": "x", "duration": 2, "cast": ["ada"]}]}, face


def test_a_failing_provider_fails_the_run_naming_node_and_provider(env, workspace, tmp_path):
    board, face = board_with_a_changed_picture(tmp_path)
    result = run(["render", "-"], env, stdin=json.dumps(board))

    assert result.returncode == 1
    said = result.stderr.strip().splitlines()[-3:]
    assert said[0] == (f"error: sprite-ada: reelflow/pictures failed: {face} changed since the "
                       "storyboard was written; plan again to use the new picture")
    assert said[1].startswith("run the same command again") and said[2].startswith("log: ")
    assert not list(workspace["out"].glob("*/video.mp4"))  # nothing published
    assert run(["cache", "verify"], env).returncode == 0


def test_a_topic_only_offline_run_says_once_that_its_narration_is_a_placeholder(env, workspace):
    from tasks.providers.local_planner import PLACEHOLDER

    made = run(["make", "tide pools", "--scenes", "2", "--no-music", "--json"], env)
    assert made.returncode == 0, made.stderr
    assert json.loads(made.stdout)["warnings"] == [PLACEHOLDER]

    notice = f"warning: {PLACEHOLDER}"
    again = run(["make", "tide pools", "--scenes", "2", "--no-music"], env)  # all reused
    planned = run(["plan", "tide pools", "--scenes", "2", "--no-music"], env)
    assert [line for line in again.stderr.splitlines() if "placeholder" in line] == [notice]
    assert planned.stderr.splitlines() == [notice]


def test_a_command_with_its_own_prefect_server_prints_only_its_result(cli_env, workspace,
                                                                     tmp_path):
    """Without PREFECT_API_URL each command starts Prefect's temporary server and stops it as
    it exits; a rerun that reuses everything ends before the server has written its last
    events, and what the server says about them goes to the command's log, not the terminal."""
    board = tmp_path / "board.json"
    board.write_text(json.dumps({"title": "Quiet", "scenes": [
        {"id": f"s{n:03d}", "order": n, "lines": [{"text": f"Tide {n} comes in."}],
         "visual_prompt": f"a beach {n}", "on_screen_text": f"Tide {n}", "duration": 2.5}
        for n in range(6)]}))
    for attempt in ("cold", "reused"):
        rendered = subprocess.run([REELFLOW, "render", str(board)], capture_output=True,
                                  text=True, env=cli_env, timeout=300)
        assert rendered.returncode == 0, rendered.stderr
        said = [line for line in rendered.stderr.splitlines() if "━" not in line]
        assert said[0].startswith("generated "), (attempt, rendered.stderr)
        assert said[1:] == [], (attempt, rendered.stderr)
        assert rendered.stdout.strip().endswith("video.mp4")
