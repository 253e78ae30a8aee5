"""The shot router: each scene's clip goes to the video chain its shot calls for, the run says
what routing cost next to all clips on the profile's first video model, a changed rule
regenerates only the shots it re-routes, and a rule that cannot be what its author meant is
refused before anything runs."""

from __future__ import annotations

import base64
import json
import re

import pytest
import yaml

from config.bible import cast_and_places
from config.pricing import cost_usd, price_table
from config.settings import load_settings
from flows.video import render_storyboard
from tasks.providers.local_planner import LocalPlanner
from tasks.providers.replicate import ReplicateAnimator
from tasks.providers.veo import VeoAnimator
from tasks.router import ROUTER_FILE, video_chain
from tasks.review import ShotReview
from tasks.storyboard import Line, Scene, ShotSize, Storyboard, VideoRequest
from tests.composing import segments_reading
from tests.fakes.google import IMAGE_SIZES, PREDICT
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


# The shot list of a 12-scene story (bench/routing.py's): establishing and wide shots,
# dialogue, two emotional peaks, one action beat.
STORY_SHOTS = [("ELS", 0.3, False), ("LS", 0.4, False), ("MS", 0.4, False), ("MCU", 0.5, False),
               ("CU", 0.6, False), ("MS", 0.5, False), ("LS", 0.8, True), ("MCU", 0.6, False),
               ("CU", 0.9, False), ("MS", 0.5, False), ("ECU", 0.95, False), ("LS", 0.3, False)]
# A colour per place, in bins of the offline measure that no character's clothes are in, nor
# the blend of a place's colour with one (blue and Juno's green blend into Otto's teal).
COLOURS = ["#d62828", "#f2c500", "#8e24aa"]


def drifting_painter(rate: float):
    """An image model for the fake: a place's reference sheet is one strong colour of its
    own; a keyframe is its location's colour with each character drawn in theirs, except that now
    and then (`rate`, decided by the prompt and seed, so a retake may come out right) it
    leaves one character out, as a drifting model does."""
    import hashlib
    import io
    from collections import Counter

    from PIL import Image, ImageDraw

    colours: dict[str, str] = {}

    def strongest(picture) -> tuple:  # its most common saturated colour: clothes, not skin
        pixels = picture.convert("RGB").resize((64, 64)).getdata()
        counts = Counter(pixel for pixel in pixels
                         if max(pixel) > 40 and (max(pixel) - min(pixel)) / max(pixel) > 0.5)
        return counts.most_common(1)[0][0]

    def draw(body: dict) -> bytes:
        parts = body["contents"][0]["parts"]
        prompt = "\n".join(part["text"] for part in parts if "text" in part)
        aspect = body["generationConfig"].get("imageConfig", {}).get("aspectRatio", "1:1")
        size = IMAGE_SIZES[aspect]
        if aspect == "1:1":  # a reference sheet
            colour = colours.setdefault(prompt.split(".")[0], COLOURS[len(colours)])
            picture = Image.new("RGB", size, colour)
            ImageDraw.Draw(picture).ellipse((400, 100, 624, 324), fill="#f1faee")
        else:
            named = re.findall(r"image (\d+) is .+? \((character|location)\)", prompt)
            pictures = [Image.open(io.BytesIO(base64.urlsafe_b64decode(  # as the SDK sends it
                part["inlineData"]["data"] + "=" * (-len(part["inlineData"]["data"]) % 4))))
                for part in parts if "inlineData" in part]
            main = {number: strongest(picture) for number, picture in enumerate(pictures, 1)}
            place = [main[int(n)] for n, subject in named if subject == "location"]
            cast = [main[int(n)] for n, subject in named if subject == "character"]
            luck = hashlib.sha256(f"{prompt}{body['generationConfig'].get('seed')}".encode())
            if cast and luck.digest()[0] < rate * 256:
                cast = cast[1:]  # the first character is missing
            picture = Image.new("RGB", size, place[0] if place else "#457b9d")
            canvas = ImageDraw.Draw(picture)
            width, height = size
            canvas.rectangle((0, height * 3 // 4, width, height), fill="#f1faee")
            mark = luck.digest()[1] * width // 256  # no two takes make the same picture
            canvas.rectangle((mark, height - 60, mark + 40, height - 20), fill="#333333")
            for index, colour in enumerate(cast):
                x = width * (index + 1) // (len(cast) + 1)
                canvas.ellipse((x - 90, height // 2 - 90, x + 90, height // 2 + 90), fill=colour)
        buffer = io.BytesIO()
        picture.save(buffer, format="PNG")
        return buffer.getvalue()

    return draw


@pytest.mark.slow
@pytest.mark.usefixtures("prefect_api_url", "workspace")
def test_a_12_scene_3_character_cloud_story_is_measured_or_flagged_and_says_what_routing_saved(
        cloud, monkeypatch):  # noqa: F811
    monkeypatch.setenv("REELFLOW_QUALITY", "standard")
    google, replicate = cloud["google"], cloud["replicate"]
    google.draw = drifting_painter(rate=0.4)
    google.animate = replicate.animate = True  # clips keep their keyframe, as i2v models do
    characters, places = cast_and_places(load_settings(), ["mira", "otto", "juno"],
                                         ["workshop", "rooftop", "library"])
    planned = LocalPlanner().plan(VideoRequest(
        topic="a kite festival", scenes=12, characters=characters, locations=places)).storyboard
    board = planned.model_copy(update={"scenes": [
        scene.model_copy(update={"shot": ShotSize(shot), "intensity": intensity,
                                 "physics": physics, "duration": 4.0})
        for scene, (shot, intensity, physics) in zip(planned.scenes, STORY_SHOTS)]})
    assert {member for scene in board.scenes for member in scene.cast} == {"mira", "otto", "juno"}

    summary = render_storyboard(board)

    nodes = json.loads(summary.manifest.read_text())["nodes"]
    shots = [node for node in nodes if node["kind"] in ("image", "clip")]
    assert len(shots) == 24
    flagged = {row["id"]: row for row in summary.review}
    for node in shots:
        review = ShotReview.model_validate(node["review"])
        assert 1 <= len(review.attempts) <= load_settings().max_attempts, node["id"]
        scene = board.scene(node["scene"])
        # Measured against every character in the scene: consistent, or flagged with scores.
        assert set(review.used.identity) == set(scene.cast), node["id"]
        if review.flagged:
            assert flagged[node["id"]]["identity"] == review.used.identity
        else:
            assert not review.used.reasons and min(review.used.identity.values()) >= \
                review.threshold, node["id"]
    assert summary.drift["first_attempt"] > 0  # the painter drifted, and that was seen
    # Every attempt was paid once, at the fakes.
    attempts = {kind: sum(len(node["review"]["attempts"]) for node in shots
                          if node["kind"] == kind) for kind in ("image", "clip")}
    sheets = sum(node["kind"] == "reference" and node["provider"] == "gemini-image"
                 for node in nodes)  # the places': the characters have their own pictures
    assert google.billed["image"] == sheets + attempts["image"]
    clips = {node["id"]: node["provider"] for node in shots if node["kind"] == "clip"}
    videos = [p for p in replicate.predictions.values() if "clip" not in p["model"]]
    assert len(google.calls("POST", PREDICT)) + len(videos) == attempts["clip"]
    assert set(clips.values()) == {"veo", "replicate"}
    # The router's report: routed next to all on Veo, at the price table's prices.
    routing = summary.routing
    veo = clip_price("veo", "veo-3.0-fast-generate-001", VeoAnimator(), 4.0)
    assert routing.unrouted_usd == pytest.approx(12 * veo)
    assert routing.routed_usd < routing.unrouted_usd
    consistent = sum(not ShotReview.model_validate(n["review"]).flagged for n in shots)
    print(f"\n12 scenes, 3 characters: {consistent} of 24 shots consistent, {len(flagged)} "
          f"flagged; attempts {attempts}; drift {summary.drift}; routed "
          f"${routing.routed_usd:.2f} vs ${routing.unrouted_usd:.2f} all on Veo "
          f"({1 - routing.routed_usd / routing.unrouted_usd:.0%} saved); "
          f"paid ${summary.cost_usd:.2f}")
    for row in summary.review:
        print(row["id"], clips.get(row["id"]), row["attempts"], row["identity"], row["reasons"])
