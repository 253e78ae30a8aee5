"""The shot router: each scene's clip goes to the video chain its shot calls for, the run says
what routing cost next to all clips on the profile's first video model, a changed rule
regenerates only the shots it re-routes, and a rule that cannot be what its author meant is
refused before anything runs."""

from __future__ import annotations

import json

import pytest
import yaml

from config.pricing import cost_usd, price_table
from config.settings import load_settings
from flows.video import render_storyboard
from tasks.providers.replicate import ReplicateAnimator
from tasks.providers.veo import VeoAnimator
from tasks.router import ROUTER_FILE, video_chain
from tasks.storyboard import Line, Scene, ShotSize, Storyboard
from tests.composing import segments_reading
from tests.fakes.google import PREDICT
from tests.test_cli_input import run
from tests.test_cloud_render import cloud  # noqa: F401  (a fixture)

WAN = "replicate:wan-video/wan-2.2-i2v-fast"
SEEDANCE = "replicate:bytedance/seedance-1-lite"
# (shot, intensity, physics) → the first provider of the route the shipped standard rules give.
SHOTS = {"s001": (ShotSize.ELS, 0.3, False, SEEDANCE),
         "s002": (ShotSize.CU, 0.9, False, "veo"),
         "s003": (ShotSize.MS, 0.5, True, "veo"),
         "s004": (ShotSize.MS, 0.5, False, WAN)}


def storyboard() -> Storyboard:
    return Storyboard(title="Routes", scenes=[
        Scene(id=scene, order=index, lines=[Line(text=f"Scene {index + 1} is shot its way.")],
              visual_prompt=f"a harbour, shot {shot.value}", duration=4.0, shot=shot,
              intensity=intensity, physics=physics)
        for index, (scene, (shot, intensity, physics, _)) in enumerate(SHOTS.items())])


def test_the_standard_rules_route_each_shot_to_the_model_that_suits_it():
    settings = load_settings("cloud", quality="standard")
    board = storyboard()
    assert {scene.id: video_chain(scene, settings)[0] for scene in board.scenes} == {
        scene: route for scene, (*_, route) in SHOTS.items()}
    off = load_settings("cloud", quality="off")
    assert {video_chain(scene, off)[0] for scene in board.scenes} == {"veo"}


def clip_price(provider: str, model: str, animator, duration: float) -> float:
    seconds = animator.fit_duration(duration)
    return cost_usd(provider, model, {"video_seconds": seconds}, price_table(None))


@pytest.mark.usefixtures("prefect_api_url", "workspace")
def test_a_mixed_storyboard_goes_where_the_rules_say_and_a_changed_rule_reroutes_only_its_shots(
        cloud, monkeypatch, tmp_path):  # noqa: F811
    monkeypatch.setenv("REELFLOW_QUALITY", "standard")
    google, replicate = cloud["google"], cloud["replicate"]
    board = storyboard()

    summary = render_storyboard(board)

    served = {node["id"]: (node["provider"], node["model"])
              for node in json.loads(summary.manifest.read_text())["nodes"]}
    assert {scene: served[f"{scene}-clip"] for scene in SHOTS} == {
        "s001": ("replicate", "bytedance/seedance-1-lite"),
        "s002": ("veo", "veo-3.0-fast-generate-001"), "s003": ("veo", "veo-3.0-fast-generate-001"),
        "s004": ("replicate", "wan-video/wan-2.2-i2v-fast")}
    assert len(google.calls("POST", PREDICT)) == 2  # a Veo job each for s002 and s003
    models = sorted(p["model"] for p in replicate.predictions.values())
    assert models == ["bytedance/seedance-1-lite", "wan-video/wan-2.2-i2v-fast"]
    veo = clip_price("veo", "veo-3.0-fast-generate-001", VeoAnimator(), 4.0)
    seedance = clip_price("replicate", "bytedance/seedance-1-lite",
                          ReplicateAnimator({"model": "bytedance/seedance-1-lite"}), 4.0)
    wan = clip_price("replicate", "wan-video/wan-2.2-i2v-fast", ReplicateAnimator(), 4.0)
    routing = summary.routing
    assert routing.routed_usd == pytest.approx(seedance + 2 * veo + wan)
    assert routing.unrouted_usd == pytest.approx(4 * veo) and routing.unrouted == "veo"
    assert routing.routed_usd < routing.unrouted_usd
    assert routing.scenes == {SEEDANCE: 1, "veo": 2, WAN: 1}

    # Establishing shots go to wan now: only s001's clip is made again.
    rules = yaml.safe_load(ROUTER_FILE.read_text())
    rules["standard"][2]["video"] = [WAN, "kenburns"]
    (tmp_path / "router.yaml").write_text(yaml.safe_dump(rules))
    monkeypatch.setenv("REELFLOW_ROUTER", str(tmp_path / "router.yaml"))

    again = render_storyboard(board)

    generated = {node.id for node in again.nodes if node.status == "generated"}
    # (The fake makes the same clip for every model: what follows it may be reused.)
    assert {"s001-clip"} <= generated <= {"s001-clip", *segments_reading(board, "s001"),
                                          "compose"}
    assert len(google.calls("POST", PREDICT)) == 2
    assert again.routing.scenes == {"veo": 2, WAN: 2}


@pytest.mark.parametrize("rules, said", [
    ({"standard": [{"name": "faces", "when": {"shot": ["CU"]}, "video": ["vep"]}]},
     "standard rule 1 (faces): video: no provider named 'vep' (known: kenburns, replicate, "
     "veo)"),
    ({"standard": [{"name": "faces", "when": {"shoot": ["CU"]}, "video": ["veo"]}]},
     "standard rule 1 (faces): when.shoot: Extra inputs are not permitted"),
    ({"standard": [{"name": "calm", "when": {"intensity": {"max": 1.5}}, "video": ["veo"]}]},
     "standard rule 1 (calm): when.intensity.max: Input should be less than or equal to 1"),
    ({"standard": [{"name": "faces", "when": {"shot": ["FACE"]}, "video": ["veo"]}]},
     "standard rule 1 (faces): when.shot.0: Input should be 'ECU', 'CU', 'MCU', 'MS', 'LS' or "
     "'ELS'"),
])
def test_a_router_rule_that_cannot_be_meant_is_refused_naming_file_rule_and_field(
        rules, said, cli_env, tmp_path):
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(rules))
    board = tmp_path / "board.json"
    board.write_text(storyboard().model_dump_json())
    env = {**cli_env, "REELFLOW_ROUTER": str(path), "REELFLOW_QUALITY": "standard"}

    completed = run(["render", str(board)], env)

    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [f"error: {path}: {said}"]


@pytest.mark.parametrize("env, said", [
    ({"REELFLOW_MAX_ATTEMPTS": "0"}, "settings.max_attempts: Input should be greater than or "
                                     "equal to 1"),
    ({"REELFLOW_MAX_ATTEMPTS": "11"}, "settings.max_attempts: Input should be less than or "
                                      "equal to 10"),
    ({"REELFLOW_PROVIDER_OPTIONS": '{"embedding:local": {"threshold": 1.2}}'},
     "provider_options.local.threshold: Input should be less than or equal to 1"),
    ({"REELFLOW_QUALITY": "best"}, "settings.quality: Input should be 'off', 'draft', "
                                   "'standard' or 'premium'"),
])
def test_gate_and_router_settings_out_of_range_are_refused(env, said, cli_env, tmp_path):
    board = tmp_path / "board.json"
    board.write_text(storyboard().model_dump_json())

    completed = run(["render", str(board)], {**cli_env, **env})

    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines() == [f"error: {said}"]
    assert not (tmp_path / "out").exists()
