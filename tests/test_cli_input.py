"""Bad input: exit code 2, one line naming the field, nothing stored, nothing published."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REELFLOW = str(Path(sys.executable).parent / "reelflow")


def run(args: list[str], env: dict, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([REELFLOW, *args], input=stdin, capture_output=True, text=True,
                          env=env, timeout=120)


def _scene(**changes) -> dict:
    return {"id": "s001", "order": 0, "lines": [{"text": "Hello."}], "visual_prompt": "sky",
            "duration": 3, **changes}


def _board(scenes) -> str:
    return json.dumps({"title": "T", "scenes": scenes})


BAD_STORYBOARDS = {
    "malformed json": ("{not json", "storyboard"),
    "not an object": ("[1, 2]", "storyboard"),
    "no scenes": (_board([]), "storyboard.scenes"),
    "500 scenes": (_board([_scene(id=f"s{i}", order=i) for i in range(500)]), "storyboard.scenes"),
    "negative duration": (_board([_scene(duration=-2)]), "storyboard.scenes.0.duration"),
    "duplicate ids": (_board([_scene(), _scene(order=1)]), "storyboard"),
    "dot-dot id": (_board([_scene(id="..")]), "storyboard.scenes.0.id"),
    "path id": (_board([_scene(id="a/b")]), "storyboard.scenes.0.id"),
    "unknown field": (_board([_scene(sound="loud")]), "storyboard.scenes.0.sound"),
    "lipsync not a switch": (_board([_scene(lipsync="maybe")]), "storyboard.scenes.0.lipsync"),
    "empty narration": (_board([_scene(lines=[{"text": " "}])]), "storyboard.scenes.0.lines.0.text"),
}


def _assert_refused(result, field: str, workspace: dict) -> None:
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), result.stderr
    assert result.stdout == ""
    assert not workspace["store"].exists() and not workspace["out"].exists()


@pytest.mark.parametrize("case", sorted(BAD_STORYBOARDS))
def test_a_bad_storyboard_is_refused_with_one_line(case, cli_env, workspace):
    text, field = BAD_STORYBOARDS[case]
    _assert_refused(run(["render", "-"], cli_env, stdin=text), field, workspace)


@pytest.mark.parametrize("args, field", [
    (["make", ""], "topic"),
    (["make", "x" * 10_000], "topic"),
    (["make", "bees", "--scenes", "0"], "scenes"),
    (["make", "bees", "--scenes", "500"], "scenes"),
    (["make"], "request: give a topic or a script"),
    (["make", "bees", "--style", "../../etc"], "style"),
    (["make", "bees", "--style", "watercolour"], "style: unknown style 'watercolour'"),
    (["plan", "bees\u0007"], "topic"),
    (["make", "bees", "--profile", "nope"], "profile"),
    (["make", "bees", "--language", "en", "--voice", "fr"], "voice: 'fr' does not speak English"),
    (["make", "bees", "--cast", "mira,nobody"], "cast: no character 'nobody'"),
    (["make", "bees", "--director", "wes"], "director: Input should be 'anime'"),
    (["make", "bees", "--mode", "podcast"], "mode: Input should be 'explainer'"),
    (["make", "bees", "--cta", "Buy now"], "cta: is for --mode ad only (the mode is explainer)"),
    (["make", "--mode", "ad", "--cta", "Go"], "product: an ad needs its product (--product)"),
    (["make", "--mode", "ad", "--product", "A", "--cta", "x" * 61],
     "cta: String should have at most 60 characters"),
    (["make", "--mode", "ad", "--product", "A", "--cta", "Go", "--platform", "myspace"],
     "platform: Input should be 'tiktok'"),
    (["make", "--mode", "ad", "--product", "A", "--cta", "Go", "--length", "20"],
     "length: Input should be 15, 30 or 60"),
    (["make", "--mode", "ad", "--product", "A", "--cta", "Go", "--product-image",
      str(Path(__file__).parents[1] / "pyproject.toml")], "product_image: '/"),
    (["make", "bees", "--publish", "az://bucket/videos"], "publish: 'az://bucket/videos': az:// "
                                                          "is not supported; use gs://"),
    (["make", "bees", "--publish", "gs://bucket/../up"], "publish: bad prefix"),
    (["make", "bees", "--max-cost", "-1"], "max_cost"),
    (["make", "bees", "--profile", "cloud"], "plans: gemini: GEMINI_API_KEY is not set"),
    (["plan", "bees", "--profile", "cloud"], "plans: gemini: GEMINI_API_KEY is not set"),
    (["mcp"], "api key: set REELFLOW_API_KEY"),
])
def test_a_bad_request_is_refused_with_one_line(args, field, cli_env, workspace):
    for key in ("GEMINI_API_KEY", "ELEVENLABS_API_KEY", "REPLICATE_API_TOKEN"):
        cli_env.pop(key, None)
    _assert_refused(run(args, cli_env), field, workspace)


@pytest.mark.parametrize("command, settings, line", [
    ("plan", {"REELFLOW_PROVIDER_OPTIONS": '{"espeak": {"rat": 160}}'},
     "provider_options.espeak: unknown option 'rat' (valid: attempts, base_url, deadline_s, "
     "model, pitch, rate, timeout_s)"),
    ("plan", {"REELFLOW_PROVIDER_OPTIONS": '{"espeek": {"rate": 160}}'},
     "provider_options: no provider named 'espeek' (known: elevenlabs, espeak,"),
    ("make", {"REELFLOW_VIDEO": "veoo,kenburns"},
     "video: no provider named 'veoo' (known: kenburns, replicate, veo)"),
], ids=["unknown-option", "unknown-options-key", "unknown-chain-entry"])
def test_a_provider_setting_that_names_nothing_real_is_refused(command, settings, line, cli_env,
                                                               workspace):
    _assert_refused(run([command, "bees"], {**cli_env, **settings}), line, workspace)


@pytest.mark.parametrize("settings, line", [
    ({"REELFLOW_LOUDNESS_LUFS": "-3"}, "settings.loudness_lufs: Input should be less than or "
                                       "equal to -6"),
    ({"REELFLOW_LOUDNESS_LUFS": "loud"}, "settings.loudness_lufs: Input should be a valid number"),
    ({"REELFLOW_SCENE_PAD_SECONDS": "0"}, "settings.scene_pad_seconds: Input should be greater "
                                          "than or equal to 0.1"),
], ids=["loudness-too-high", "loudness-not-a-number", "pad-zero"])
def test_a_loudness_or_pace_setting_out_of_range_is_refused(settings, line, cli_env, workspace):
    _assert_refused(run(["make", "bees"], {**cli_env, **settings}), line, workspace)


def test_a_price_table_with_an_unknown_unit_is_refused(cli_env, workspace, tmp_path):
    prices = tmp_path / "prices.yaml"
    prices.write_text("espeak:\n  espeak-ng: {per_1k_chars: 0.1}\n")
    result = run(["make", "bees"], {**cli_env, "REELFLOW_PRICES": str(prices)})
    _assert_refused(result, f"prices: {prices}: espeak/espeak-ng: unknown unit 'per_1k_chars' "
                    "(valid: per_1k_characters,", workspace)


def test_a_missing_storyboard_file_is_refused(cli_env, workspace, tmp_path):
    _assert_refused(run(["render", str(tmp_path / "nope.json")], cli_env), "storyboard", workspace)


def test_schema_prints_the_storyboard_json_schema(cli_env):
    result = run(["schema"], cli_env)
    assert result.returncode == 0
    assert "scenes" in json.loads(result.stdout)["properties"]
