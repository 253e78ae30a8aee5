"""Ads: a product that stays itself in every shot, a platform's shape and slot, and an end card
reelflow sets (read back by OCR), offline and with a cloud image model's fake."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from PIL import Image, ImageDraw

from cache import open_store
from config.settings import load_settings
from flows.creative import Creative
from flows.video import make_video, render_storyboard
from tasks.ffmpeg import ffmpeg_exe, probe
from tasks.providers.gemini import GeminiPlanner
from tasks.providers.local_planner import LocalPlanner
from tasks.providers.planning import as_ad
from tasks.storyboard import Ad, Line, Product, Scene, Storyboard, VideoRequest
from tests.fakes.google import FakeGoogle, inline_images, prompt_text
from tests.ocr import need_tesseract, plain, read_words

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")

CTA = "Shop now at aurora.example"


def product_photo(path: Path) -> Path:
    """A red pair of headphones on white."""
    picture = Image.new("RGB", (400, 400), "white")
    draw = ImageDraw.Draw(picture)
    draw.arc((80, 60, 320, 300), 200, 340, fill="#c0392b", width=28)
    draw.rounded_rectangle((60, 200, 130, 320), 20, fill="#c0392b")
    draw.rounded_rectangle((270, 200, 340, 320), 20, fill="#c0392b")
    picture.save(path)
    return path


def frame(video: Path, seconds: float) -> Image.Image:
    info = probe(video)
    raw = subprocess.run([ffmpeg_exe(), "-v", "error", "-ss", f"{seconds:.3f}", "-i", str(video),
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, check=True, timeout=60).stdout
    return Image.frombytes("RGB", (info.width, info.height), raw)


def test_a_tiktok_ad_is_vertical_15_seconds_and_ends_on_its_call_to_action(tmp_path,
                                                                           monkeypatch):
    monkeypatch.setenv("REELFLOW_SHORT_SIDE", "540")
    summary = make_video(topic="noise-cancelling headphones for commuters", creative=Creative(
        mode="ad", product="Aurora headphones", product_image=[product_photo(tmp_path / "a.png")],
        cta=CTA, platform="tiktok"))

    info = probe(summary.video)
    assert (info.width, info.height) == (540, 960)
    assert info.duration == pytest.approx(15, abs=1 / info.fps)
    board = Storyboard.model_validate_json(
        (summary.video.parent / "storyboard.json").read_text(encoding="utf-8"))
    last = board.ordered_scenes()[-1]
    assert board.end_card(last) and all(scene.product for scene in board.scenes)
    need_tesseract("eng")
    start, end = board.spans()[last.id]
    card = frame(summary.video, (start + end) / 2)
    above_captions = card.crop((0, 0, card.width, round(card.height * 0.8)))
    read = plain(" ".join(word for word, _ in read_words(above_captions, "eng")))
    assert plain(CTA) in read and plain("Aurora headphones") in read


def test_every_product_scene_s_keyframe_is_drawn_from_the_product_s_picture(tls, tmp_path,
                                                                           monkeypatch):
    """Counted at Gemini's fake: one keyframe request per scene but the end card (reelflow sets
    it), each carrying the product's reference; none is generated for the product itself,
    whose pictures the user gave."""
    monkeypatch.setenv("GEMINI_API_KEY", "canary-gemini-0001")
    monkeypatch.setenv("REELFLOW_IMAGE", "gemini-image")
    monkeypatch.setenv("REELFLOW_MAX_ATTEMPTS", "1")
    monkeypatch.setenv("REELFLOW_SHORT_SIDE", "360")
    request = VideoRequest(topic="headphones", **Creative(
        mode="ad", product="Aurora", product_image=[product_photo(tmp_path / "a.png")], cta=CTA,
        platform="youtube-preroll", length=30).request_fields())
    board = LocalPlanner().plan(request).storyboard
    with FakeGoogle(tls) as google:
        monkeypatch.setenv("REELFLOW_PROVIDER_OPTIONS",
                           json.dumps({"gemini-image": {"base_url": google.url}}))
        summary = render_storyboard(board)
        calls = google.calls("POST", "generateContent")

    assert summary.placeholders == 0
    assert probe(summary.video).duration == pytest.approx(30, abs=1 / 30)
    assert (probe(summary.video).width, probe(summary.video).height) == (640, 360)
    shown = [scene for scene in board.ordered_scenes() if not board.end_card(scene)]
    assert len(calls) == len(shown) == len(board.scenes) - 1
    store = open_store(load_settings().store)
    [reference] = [record for record in store.records() if record.kind == "reference"]
    product = store.read_bytes(reference.outputs["image"])
    for scene in shown:
        [call] = [c for c in calls if scene.visual_prompt in prompt_text(c)]
        assert inline_images(call) == [product]
        assert "Featuring the product: Aurora" in prompt_text(call)


@pytest.mark.parametrize("seconds, drafted", [(15, 5), (15, 2), (30, 6), (60, 12)])
def test_an_ad_s_scenes_fill_its_slot_exactly_and_end_on_the_end_card(seconds, drafted):
    ad = Ad(product=Product(name="Aurora"), cta=CTA, seconds=seconds)
    scenes = [Scene(id=f"s{i + 1:03d}", order=i, lines=[Line(text="Built to last.")],
                    visual_prompt="headphones", duration=9) for i in range(drafted)]
    timed = as_ad(ad, scenes)
    board = Storyboard(title="Aurora", ad=ad, scenes=timed)
    assert board.spans()[timed[-1].id][1] == pytest.approx(seconds, abs=1e-6)
    assert board.end_card(timed[-1]) and timed[-1].lines[0].text == CTA
    assert [s.id for s in timed[:-1]] == [s.id for s in scenes]


def test_without_a_voice_over_an_ad_says_nothing_and_still_fills_its_slot():
    request = VideoRequest(ad=Ad(product=Product(name="Aurora"), cta=CTA,
                                            voice_over=False))
    board = LocalPlanner().plan(request).storyboard
    assert all(not scene.lines for scene in board.scenes)
    assert board.duration == pytest.approx(15)


def test_a_language_model_writes_the_ad_s_shots_and_reelflow_adds_the_end_card(tls,
                                                                              monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", "canary-gemini-0001")
    request = VideoRequest(topic="headphones for commuters", ad=Ad(
        product=Product(name="Aurora"), cta=CTA, platform="reels", seconds=30))
    with FakeGoogle(tls) as google:
        board = GeminiPlanner({"base_url": google.url}).plan(request).storyboard
        [call] = google.calls("POST", "generateContent")

    asked = prompt_text(call)
    assert "30-second" in asked and "'Aurora'" in asked and CTA in asked
    assert len(board.scenes) == request.drafted_scenes + 1
    assert board.duration == pytest.approx(30) and board.aspect.value == "9:16"
    assert board.end_card(board.ordered_scenes()[-1])
    assert all(scene.product for scene in board.scenes)
