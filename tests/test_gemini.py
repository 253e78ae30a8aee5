"""Gemini planner and image provider: the real google-genai SDK against a fake Gemini API."""

from __future__ import annotations

import io
import json
import traceback

import pytest
from PIL import Image

from config.secrets import MissingSecretError
from tasks.providers.base import ImageReference, ImageRequest, ProviderError
from tasks.providers.gemini import GeminiImage, GeminiPlanner
from tasks.storyboard import Aspect, VideoRequest
from tests.fakes.google import (
    FakeGoogle,
    blocked_prompt,
    empty_candidate,
    inline_images,
    make_png,
    prompt_text,
    storyboard_json,
    text_reply,
)
from tests.fakes.server import Response

CANARY = "canary-gemini-key-123"
FAST = {"attempts": 3, "deadline_s": 20, "timeout_s": 5}
REQUEST = VideoRequest(topic="how tides work", scenes=3, style="neon")


@pytest.fixture
def google(tls, monkeypatch):
    monkeypatch.setenv("GEMINI_API_KEY", CANARY)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with FakeGoogle(tls) as fake:
        yield fake


def planner(google, **options) -> GeminiPlanner:
    return GeminiPlanner({"base_url": google.url, **FAST, **options})


def painter(google, **options) -> GeminiImage:
    return GeminiImage({"base_url": google.url, **FAST, **options})


def failure_text(error: BaseException) -> str:
    return "".join(traceback.format_exception(error))


def test_planner_returns_the_requested_scenes_with_our_ids(google):
    result = planner(google).plan(REQUEST)

    assert [s.id for s in result.storyboard.scenes] == ["s001", "s002", "s003"]
    assert [s.on_screen_text for s in result.storyboard.scenes] == ["Thing 1", "Thing 2", "Thing 3"]
    assert result.storyboard.style == "neon"
    assert result.usage.tokens == 50 + len(storyboard_json(3).split()) + 12  # prompt+reply+thinking
    [call] = google.calls("POST", "generateContent")
    assert call.path == "/v1/models/gemini-2.5-flash:generateContent"
    assert call.headers["x-goog-api-key"] == CANARY
    assert "x-server-timeout" in call.headers  # the SDK's sign that a timeout was set
    config = call.json()["generationConfig"]
    assert config["responseMimeType"] == "application/json"
    assert set(config["responseSchema"]["properties"]) == {"title", "scenes"}
    assert google.billed["text"] == 1


def test_invalid_reply_is_repaired_once(google):
    google.replies.append(text_reply('{"title": "no scenes"}'))

    result = planner(google).plan(REQUEST)

    assert len(result.storyboard.scenes) == 3
    assert result.usage.tokens == 2 * (50 + 12) + 3 + len(storyboard_json(3).split())
    first, second = google.calls("POST", "generateContent")
    assert "rejected" in prompt_text(second) and "rejected" not in prompt_text(first)


def test_a_reply_that_is_not_json_at_all_is_asked_again(google):
    """A body that is not JSON (a proxy's error page, a reply cut off) is retried like a
    transient failure, by the planner and the painter alike."""
    not_json = Response(200, b"<html>502 Bad Gateway</html>", {"Content-Type": "application/json"})
    google.fail("POST", "generateContent", [not_json, not_json])

    assert len(planner(google).plan(REQUEST).storyboard.scenes) == 3
    assert painter(google).generate(image_request()).usage.images == 1
    assert len(google.calls("POST", "generateContent")) == 4


def test_invalid_reply_twice_is_a_provider_error(google):
    google.replies += [text_reply("not json"), text_reply('{"title": "still no scenes"}')]

    with pytest.raises(ProviderError, match="did not validate twice"):
        planner(google).plan(REQUEST)
    assert len(google.calls("POST", "generateContent")) == 2


def two_sentence_scenes(count: int) -> str:
    return json.dumps({"title": "Tides", "scenes": [
        {"narration": f"Point {i} begins here. Point {i} ends here.",
         "visual_prompt": f"the sea, view {i}", "camera": "static", "duration": 6.0}
        for i in range(1, count + 1)]})


def test_the_schema_asks_for_exactly_the_scenes_and_the_storyboards_limits(google):
    planner(google).plan(VideoRequest(topic="how tides work", scenes=6))

    [call] = google.calls("POST", "generateContent")
    # The SDK sends the schema's proto field names (the API takes them as well as camelCase).
    schema = call.json()["generationConfig"]["responseSchema"]
    scenes = schema["properties"]["scenes"]
    assert (scenes["min_items"], scenes["max_items"]) == (6, 6)
    assert schema["properties"]["title"]["max_length"] == 200
    scene = scenes["items"]["properties"]
    assert scene["narration"]["max_length"] == scene["visual_prompt"]["max_length"] == 1000
    assert scene["lines"]["items"]["properties"]["text"]["max_length"] == 1000
    assert scene["on_screen_text"]["max_length"] == 60
    assert "on_screen_text in English: its point in at most 6 words" in prompt_text(call)
    assert (scene["duration"]["minimum"], scene["duration"]["maximum"]) == (1, 120)


def test_three_scenes_for_six_are_sent_back_once_then_split_to_six(google):
    google.replies += [text_reply(two_sentence_scenes(3)), text_reply(two_sentence_scenes(3))]

    result = planner(google).plan(VideoRequest(topic="how tides work", scenes=6))

    first, repair = google.calls("POST", "generateContent")  # one repair request, no more
    assert "expected 6 scenes, got 3" in prompt_text(repair)
    assert [s.narration for s in result.storyboard.scenes] == [
        f"Point {i} {end} here." for i in (1, 2, 3) for end in ("begins", "ends")]
    assert [s.duration for s in result.storyboard.scenes] == [3.0] * 6
    assert result.adjustments == ["scenes: the model wrote 3 of the 6 scenes asked; split the "
                                  "longest in two until there were 6"]
    assert google.billed["text"] == 2


@pytest.mark.parametrize("reply, reason", [(blocked_prompt(), "PROHIBITED_CONTENT"),
                                           (empty_candidate(), "SAFETY")])
def test_reply_without_text_is_a_provider_error(google, reply, reason):
    google.replies.append(reply)

    with pytest.raises(ProviderError, match=reason) as caught:
        planner(google).plan(REQUEST)
    assert CANARY not in failure_text(caught.value)
    assert len(google.calls("POST", "generateContent")) == 1


def test_the_image_model_names_a_missing_key_too(google, monkeypatch, tmp_path):
    monkeypatch.delenv("GEMINI_API_KEY")
    monkeypatch.chdir(tmp_path)  # no .env to find
    with pytest.raises(MissingSecretError, match="GEMINI_API_KEY"):
        painter(google).generate(ImageRequest(prompt="a cat", style="neon", width=90,
                                              height=160, seed=1))
    assert google.calls() == []


# Images -----------------------------------------------------------------------------------


def image_request(**fields) -> ImageRequest:
    return ImageRequest(**{"prompt": "a lighthouse at dusk", "style": "noir", "width": 90,
                           "height": 160, "seed": 7, "aspect": Aspect.portrait, **fields})


def test_text_to_image_fills_the_requested_size(google):
    result = painter(google).generate(image_request())

    picture = Image.open(io.BytesIO(result.png))
    assert (picture.format, picture.size) == ("PNG", (90, 160))
    assert result.usage.images == 1
    [call] = google.calls("POST", "generateContent")
    assert call.path == "/v1/models/gemini-2.5-flash-image:generateContent"
    assert call.headers["x-goog-api-key"] == CANARY
    config = call.json()["generationConfig"]
    assert config["responseModalities"] == ["IMAGE"]
    assert config["imageConfig"] == {"aspectRatio": "9:16"}
    assert "black and white, film noir" in prompt_text(call)  # the style's prompt words
    assert inline_images(call) == []
    assert google.billed["image"] == 1


def test_image_to_image_sends_the_references(google, tmp_path):
    references = []
    for index, color in enumerate(["#ff0000", "#00ff00"]):
        path = tmp_path / f"ref{index}.png"
        path.write_bytes(make_png((40, 40), color))
        references.append(ImageReference(path=path, subject=("character", "location")[index],
                                         name=("Mira", "The workshop")[index]))

    result = painter(google).generate(image_request(references=references, aspect=Aspect.landscape,
                                                    width=160, height=90))

    assert Image.open(io.BytesIO(result.png)).size == (160, 90)
    [call] = google.calls("POST", "generateContent")
    assert inline_images(call) == [r.path.read_bytes() for r in references]
    assert "image 1 is Mira (character); image 2 is The workshop (location)" in prompt_text(call)
    assert call.json()["generationConfig"]["imageConfig"] == {"aspectRatio": "16:9"}


@pytest.mark.parametrize("reply, match", [
    (text_reply("I can't draw that, but here is a poem."), "no image in the reply.*poem"),
    (empty_candidate("IMAGE_SAFETY"), "IMAGE_SAFETY"),
    ({**text_reply(""), "candidates": [{"content": {"role": "model", "parts": [{"inlineData": {
        "mimeType": "image/png", "data": "bm90IGEgcG5n"}}]}, "finishReason": "STOP"}]},
     "does not decode"),
], ids=["text-only", "safety", "undecodable"])
def test_reply_without_a_usable_image_is_a_provider_error(google, reply, match):
    google.replies.append(reply)

    with pytest.raises(ProviderError, match=match) as caught:
        painter(google).generate(image_request())
    assert CANARY not in failure_text(caught.value)
    assert len(google.calls("POST", "generateContent")) == 1


def dialogue_reply(speakers: list[str], location: str | None = "workshop") -> dict:
    return text_reply(json.dumps({"title": "Boxes", "scenes": [
        {"lines": [{"speaker": speakers[0], "text": "Buckle up. Cats love boxes."},
                   {"speaker": speakers[1], "text": "Let's take it apart and see."}],
         "location": location, "visual_prompt": "a cat in a box", "camera": "zoom_in",
         "duration": 5.0}]}))


def cast_request():
    from config.bible import load_profiles
    from tasks.storyboard import Character, Location

    characters, places = load_profiles(Character), load_profiles(Location)
    return VideoRequest(topic="why cats love boxes", scenes=1,
                        characters=[characters["mira"], characters["otto"]],
                        locations=[places["workshop"]])


def test_with_a_cast_the_planner_writes_a_dialogue_in_character_through_structured_output(google):
    google.replies.append(dialogue_reply(["mira", "Otto"]))  # an id or a name, any case

    board = planner(google).plan(cast_request()).storyboard

    [scene] = board.scenes
    assert [(line.speaker, line.text) for line in scene.lines] == [
        ("mira", "Buckle up. Cats love boxes."), ("otto", "Let's take it apart and see.")]
    assert (scene.cast, scene.location) == (["mira", "otto"], "workshop")
    assert [c.id for c in board.characters] == ["mira", "otto"]  # the profiles travel with it
    [call] = google.calls("POST", "generateContent")
    prompt = prompt_text(call)
    assert "- mira: Mira; a small woman" in prompt and "Buckle up." in prompt
    assert "- workshop: a cluttered inventor's workshop" in prompt
    schema = json.dumps(call.json()["generationConfig"]["responseSchema"])
    assert "speaker" in schema and "location" in schema


def test_a_dialogue_naming_someone_outside_the_cast_is_sent_back_once(google):
    google.replies += [dialogue_reply(["mira", "bob"]), dialogue_reply(["otto", "mira"], None)]

    board = planner(google).plan(cast_request()).storyboard

    assert [line.speaker for line in board.scenes[0].lines] == ["otto", "mira"]
    first, repair = google.calls("POST", "generateContent")
    assert "speaker 'bob' is not in the cast" in prompt_text(repair)
