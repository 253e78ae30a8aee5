"""The gate after every keyframe and clip, through real renders: a shot unlike its cast, black,
frozen or one colour is made again with a prompt that says why, at most `max_attempts` times,
then published and flagged for a person; approvals hold across renders; a rerun pays nothing."""

from __future__ import annotations

import io
import json
import os
import re
from pathlib import Path

import pytest
from PIL import Image

from cache import open_store
from cache.keys import file_digest
from config.bible import cast_and_places
from config.settings import load_settings
from flows.video import render_storyboard
from tasks import look
from tasks.preflight import RenderPreview
from tasks.ffmpeg import run_ffmpeg
from tasks.providers.base import (
    ClipAnimator, ClipRequest, ClipResult, EmbeddingResult, ProviderError, Usage)
from tasks.providers.local_embedding import LocalEmbedding
from tasks.providers.local_image import LocalImage
from tasks.providers.local_planner import LocalPlanner
from tasks.review import ShotReview
from tasks.storyboard import Character, Storyboard, VideoRequest
from tests.test_cli_input import run
from tests.test_pipeline import use_prices

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")


def story(scenes: int) -> Storyboard:
    characters, _ = cast_and_places(load_settings(), ["mira", "otto"])
    return LocalPlanner().plan(VideoRequest(topic="a kite festival", scenes=scenes,
                                            characters=characters)).storyboard


def review_of(summary, node_id: str) -> ShotReview:
    node = next(n for n in json.loads(summary.manifest.read_text())["nodes"] if n["id"] == node_id)
    return ShotReview.model_validate(node["review"])


def generated(summary) -> set[str]:
    return {node.id for node in summary.nodes if node.status == "generated"}


@pytest.fixture
def scripted(register_provider, monkeypatch, tmp_path):
    """The offline embedder, except that the pictures a test names embed to nothing (unlike
    anyone); it counts what it is asked to embed, and charges for it."""

    class Scripted(LocalEmbedding):
        name = "scripted"
        unlike: set[str] = set()  # digests of pictures no character is like
        unlike_shots = False  # every picture that is not square: keyframes and frames
        foreign: set[str] = set()  # digests of references in a colour no shot shows
        calls: list[int] = []

        def embed(self, request):
            self.calls.append(len(request.images))
            vectors = super().embed(request).vectors
            return EmbeddingResult(usage=Usage(images=len(vectors)), vectors=[
                [0.0] * len(vector) if self.is_unlike(path)
                else [-1.0] * len(vector) if file_digest(path) in self.foreign
                else vector for path, vector in zip(request.images, vectors)])

        def similarity(self, shot, reference):
            return 0.0 if reference[0] < 0 else super().similarity(shot, reference)

        def is_unlike(self, path: Path) -> bool:
            if file_digest(path) in self.unlike:
                return True
            with Image.open(path) as picture:
                return self.unlike_shots and picture.width != picture.height

    class Counting(LocalImage):
        name = "counting"
        calls: list[str] = []

        def generate(self, request):
            self.calls.append(request.prompt)
            return super().generate(request)

    register_provider(Scripted)
    register_provider(Counting)
    monkeypatch.setenv("REELFLOW_EMBEDDING", "scripted")
    monkeypatch.setenv("REELFLOW_IMAGE", "counting")
    use_prices(monkeypatch, tmp_path, lambda prices: prices.update(
        scripted={"strong-colours": {"per_image": 0.001}},
        counting={"procedural": {"per_image": 0.04}}))
    return Scripted, Counting


def test_a_keyframe_unlike_its_cast_is_made_again_with_the_reason_and_passes(
        scripted, monkeypatch):
    embedder, painter = scripted
    board = story(3)
    monkeypatch.setenv("REELFLOW_EMBEDDING", "local")  # which keyframe to fail is known after
    first = render_storyboard(board)
    drifting = next(n for n in json.loads(first.manifest.read_text())["nodes"]
                    if n["id"] == "s002-image")
    embedder.unlike = {drifting["outputs"]["image"]}
    monkeypatch.setenv("REELFLOW_EMBEDDING", "scripted")
    painter.calls.clear()

    summary = render_storyboard(board.model_copy(update={"title": board.title + "!"}))

    review = review_of(summary, "s002-image")
    assert [len(attempt.reasons) for attempt in review.attempts] == [2, 0]
    assert review.attempts[0].reasons[0].startswith("Mira looks unlike their reference")
    assert (review.chosen, review.flagged, summary.review) == (2, False, [])
    # The second attempt was asked with the reason, drawn from the cast's references.
    assert len(painter.calls) == 1 and "Correction (attempt 2): Mira looks unlike" in painter.calls[0]
    second = open_store(os.environ["REELFLOW_STORE"]).lookup(review.attempts[1].key)
    assert sorted(second.parts["inputs"]) == ["reference-0", "reference-1"]
    assert {"s002-image", "s002-clip"} <= generated(summary)
    assert not {"s001-image", "s003-image", "s001-clip", "s003-clip"} & generated(summary)
    assert summary.drift["first_attempt"] > 0 and summary.drift["after_retries"] == 0

    embedder.calls.clear()
    painter.calls.clear()
    retitled = board.model_copy(update={"title": board.title + "!"})
    # The estimate replays the gates from the store: the clip drawn from the second attempt
    # is known to be stored.
    assert RenderPreview.of(retitled, load_settings()).generated == []
    again = render_storyboard(retitled)
    assert (embedder.calls, painter.calls, generated(again)) == ([], [], set())
    assert review_of(again, "s002-image").chosen == 2


def test_a_shot_that_never_passes_is_paid_max_attempts_then_flagged_approved_and_rejected(
        scripted, cli_env):
    embedder, painter = scripted
    embedder.unlike_shots = True
    board = story(1)

    summary = render_storyboard(board)

    assert len(painter.calls) == 3  # max_attempts, each paid once
    review = review_of(summary, "s001-image")
    assert (len(review.attempts), review.flagged) == (3, True)
    assert {row["id"] for row in summary.review} == {"s001-image", "s001-clip"}
    assert summary.drift == {"shots": 2, "first_attempt": 1.0, "after_retries": 1.0}
    images = [n for n in summary.nodes if n.kind == "image"]
    assert images[0].cost_usd >= 3 * 0.04
    folder = str(summary.video.parent)
    env = {name: value for name, value in cli_env.items() if name not in
           ("REELFLOW_EMBEDDING", "REELFLOW_IMAGE")}

    listed = run(["review", folder], env)
    assert listed.returncode == 0, listed.stderr
    assert "s001-image  attempt" in listed.stdout and "mira 0.00" in listed.stdout
    approved = run(["review", folder, "--approve", "s001-clip"], env)
    assert approved.returncode == 0, approved.stderr

    painter.calls.clear()
    again = render_storyboard(board)
    assert painter.calls == []
    assert {row["id"] for row in again.review} == {"s001-image"}  # the clip is approved
    assert review_of(again, "s001-clip").approved

    twice = run(["review", folder, "--approve", "s001-clip"], env)
    assert twice.returncode == 2
    assert twice.stderr.strip().endswith(
        "review --approve: 's001-clip' is not a flagged shot of this video (flagged: s001-image)")

    rejected = run(["review", folder, "--reject", "s001-image", "--json"], env)
    assert rejected.returncode == 0, rejected.stderr
    taken = json.loads(rejected.stdout)
    retaken = Storyboard.model_validate_json(Path(taken["storyboard"]).read_text())
    assert retaken.scenes[0].takes.image == 2
    made = {n["id"] for n in taken["nodes"] if n["status"] == "generated"}
    assert {"s001-image", "s001-clip"} <= made and not any("tts" in n for n in made)


class Faulty(ClipAnimator):
    """A moving test pattern with a fault: `black` for its first second (gone once a
    correction is asked for), or `frozen` for 1.5 s in every attempt."""

    name = "faulty"
    fault = "black"
    calls: list[str] = []

    class Options(ClipAnimator.Options):
        model: str = "pattern"

    def animate(self, request: ClipRequest, workdir: Path) -> ClipResult:
        self.calls.append(request.prompt)
        video = workdir / "faulty.mp4"
        size = f"{request.width}x{request.height}"
        corrected = "Correction" in request.prompt
        fault = {"black": "null" if corrected else "drawbox=c=black:t=fill:enable='lt(t,1)'",
                 "frozen": f"loop=loop={request.fps * 3 // 2}:size=1:start={request.fps},"
                           f"setpts=N/{request.fps}/TB,trim=duration={request.duration}"
                 }[self.fault]
        tint = f"hue=h={40 * len(self.calls)}"  # a new clip each time
        run_ffmpeg(["-f", "lavfi", "-i", f"testsrc=size={size}:rate={request.fps}:"
                    f"duration={request.duration}", "-vf", f"{tint},{fault}", "-pix_fmt", "yuv420p",
                    str(video)], what="make a faulty clip")
        return ClipResult(video=video, usage=Usage(video_seconds=request.duration))


@pytest.mark.parametrize("fault, attempts, reason", [
    ("black", 2, r"black for 1\.0 s from 0\.0 s"),
    ("frozen", 3, r"frozen for 1\.[5-7] s from (0\.9|1\.0) s"),
])
def test_black_and_frozen_clips_are_caught_and_made_again(
        fault, attempts, reason, register_provider, monkeypatch, tmp_path):
    register_provider(Faulty)
    monkeypatch.setattr(Faulty, "fault", fault)
    monkeypatch.setattr(Faulty, "calls", [])
    monkeypatch.setenv("REELFLOW_VIDEO", "faulty")
    use_prices(monkeypatch, tmp_path, lambda prices: prices.update(
        faulty={"pattern": {"per_video_second": 0.0}}))
    board = LocalPlanner().plan(VideoRequest(topic="tide pools", scenes=1)).storyboard
    board = board.model_copy(update={"scenes": [board.scenes[0].model_copy(
        update={"duration": 4.0})]})

    summary = render_storyboard(board)

    review = review_of(summary, "s001-clip")
    assert len(Faulty.calls) == len(review.attempts) == attempts
    [said] = review.attempts[0].reasons
    assert re.fullmatch(reason, said)
    assert f"Correction (attempt 2): {said}." in Faulty.calls[1]
    assert review.flagged == (fault == "frozen")


class Flat(LocalImage):
    """One grey, whatever it is asked: every attempt makes the same bytes."""

    name = "flat"

    def generate(self, request):
        from tasks.pictures import png

        return type(super().generate(request))(
            png=png(Image.new("RGB", (request.width, request.height), (120, 120, 120))),
            usage=Usage(images=1))


def test_a_single_colour_keyframe_is_flagged_without_paying_for_the_same_picture_again(
        register_provider, monkeypatch, tmp_path):
    register_provider(Flat)
    monkeypatch.setenv("REELFLOW_IMAGE", "flat")
    use_prices(monkeypatch, tmp_path, lambda prices: prices.update(
        flat={"procedural": {"per_image": 0.0}}))
    board = LocalPlanner().plan(VideoRequest(topic="tide pools", scenes=1)).storyboard

    summary = render_storyboard(board)

    review = review_of(summary, "s001-image")
    # The second attempt made the same picture: a third would too.
    assert [attempt.reasons for attempt in review.attempts] == [
        ["the picture is a single colour"]] * 2
    assert review.flagged and summary.review[0]["id"] == "s001-image"


def test_most_shots_unlike_one_character_make_its_reference_again_before_any_retry(
        scripted, monkeypatch):
    embedder, painter = scripted
    kit = Character(id="kit", name="Kit", appearance="a tall man", wardrobe="a green coat")
    board = LocalPlanner().plan(VideoRequest(topic="a kite festival", scenes=3,
                                             characters=[kit])).storyboard
    assert all(scene.cast == ["kit"] for scene in board.scenes)
    monkeypatch.setenv("REELFLOW_EMBEDDING", "local")  # the first reference is known after
    first = render_storyboard(board)
    reference = next(n for n in json.loads(first.manifest.read_text())["nodes"]
                     if n["id"] == "ref-kit")
    embedder.foreign = {reference["outputs"]["image"]}  # no shot looks like this sheet
    monkeypatch.setenv("REELFLOW_EMBEDDING", "scripted")
    painter.calls.clear()

    summary = render_storyboard(board.model_copy(update={"title": board.title + "!"}))

    # One new sheet, then each keyframe drawn from it once: no scene was tried again.
    assert painter.calls[0].startswith("Character reference sheet of Kit")
    assert len(painter.calls) == 4 and not any("Correction" in call for call in painter.calls)
    published = Storyboard.model_validate_json(summary.storyboard.read_text())
    assert published.character("kit").reference_take == 2
    assert summary.review == [] and summary.drift["after_retries"] == 0
    assert "a new reference of Kit: most of their shots drifted from the first" in summary.warnings

    painter.calls.clear()
    embedder.calls.clear()
    again = render_storyboard(published)
    assert (painter.calls, embedder.calls, generated(again)) == ([], [], set())


class Down(LocalEmbedding):
    """An embedding service that is down."""

    name = "down"

    def embed(self, request):
        raise ProviderError("down: 503 Service Unavailable")


def test_a_shot_its_gate_cannot_measure_is_published_flagged_and_never_made_again(
        scripted, register_provider, monkeypatch, tmp_path):
    _, painter = scripted
    register_provider(Down)
    monkeypatch.setenv("REELFLOW_EMBEDDING", "down")
    use_prices(monkeypatch, tmp_path, lambda prices: prices.update(
        down={"strong-colours": {"per_image": 0.0}},
        counting={"procedural": {"per_image": 0.04}}))

    summary = render_storyboard(story(1))

    assert len(painter.calls) == 1  # no retry: nothing said the picture was wrong
    flagged = {row["id"]: row["reasons"] for row in summary.review}
    assert set(flagged) == {"s001-image", "s001-clip"}
    assert flagged["s001-image"][0].startswith("not measured: s001-image-gate: down/")


class Tinted(LocalImage):
    """The offline painter, its keyframes darkened by `shade` (every channel times it) until a
    correction is asked for; reference sheets (square) as drawn."""

    name = "tinted"
    shade = 0.6
    calls: list[str] = []

    def generate(self, request):
        from tasks.pictures import png

        self.calls.append(request.prompt)
        made = super().generate(request)
        if request.width == request.height or "Correction" in request.prompt:
            return made
        with Image.open(io.BytesIO(made.png)) as picture:
            darker = picture.convert("RGB").point(lambda value: round(value * self.shade))
        return type(made)(png=png(darker), usage=made.usage)


def painting_with(painter, register_provider, monkeypatch, tmp_path, **attributes) -> None:
    """`painter` as the image provider, priced, its calls cleared and `attributes` set."""
    register_provider(painter)
    for name, value in {**attributes, "calls": []}.items():
        monkeypatch.setattr(painter, name, value)
    monkeypatch.setenv("REELFLOW_IMAGE", painter.name)
    use_prices(monkeypatch, tmp_path, lambda prices: prices.update(
        {painter.name: {"procedural": {"per_image": 0.04}}}))


def in_the_workshop(scenes: int) -> Storyboard:
    _, places = cast_and_places(load_settings(), places=["workshop"])
    return LocalPlanner().plan(VideoRequest(topic="tide pools", scenes=scenes,
                                            locations=places)).storyboard


@pytest.mark.parametrize("shade, graded", [(0.6, True), (0.3, False)])
def test_a_keyframe_off_its_locations_colours_is_graded_back_or_made_again(
        shade, graded, register_provider, monkeypatch, tmp_path):
    painting_with(Tinted, register_provider, monkeypatch, tmp_path, shade=shade)

    summary = render_storyboard(in_the_workshop(1))

    review = review_of(summary, "s001-image")
    nodes = {n["id"]: n for n in json.loads(summary.manifest.read_text())["nodes"]}
    store = open_store(os.environ["REELFLOW_STORE"])
    reference = look.pixels(store.blob_path(nodes["ref-workshop"]["outputs"]["image"]))
    used = store.blob_path(nodes["s001-image"]["outputs"]["image"])
    if graded:  # a grade, not a paid picture: drawn once, and the clip is made from the grade
        assert len(Tinted.calls) == 2 and len(review.attempts) == 1
        attempt = review.used
        assert attempt.look > look.LOOK_DISTANCE and not attempt.reasons
        assert attempt.corrected.digest == nodes["s001-image"]["outputs"]["image"] != attempt.digest
        clip = store.lookup(nodes["s001-clip"]["key"])
        assert clip.parts["inputs"]["image"] == attempt.corrected.digest
    else:  # too dark for any allowed grade: made again, with the reason
        assert len(Tinted.calls) == 3 and len(review.attempts) == 2
        [said] = review.attempts[0].reasons
        assert re.fullmatch(r"the colours are off The workshop's look \(ΔE \d+ from its "
                            r"reference, at most 25; the strongest grade leaves \d+\)", said)
        assert f"Correction (attempt 2): {said}." in Tinted.calls[-1]
        assert review.used.corrected is None
    # What is used is within the look, measured again on the bytes the video was made from.
    assert look.distance(look.pixels(used), reference) <= look.LOOK_DISTANCE
    with Image.open(used) as picture:
        assert picture.size == (nodes["s001-image"]["params"]["width"],
                                nodes["s001-image"]["params"]["height"])
    assert not review.flagged and summary.review == []
    assert review_of(summary, "s001-clip").used.corrected is None  # drawn from a good keyframe
    assert RenderPreview.of(in_the_workshop(1), load_settings()).generated == []


class Small(LocalImage):
    """The offline painter at `scale` of the asked size until a correction is asked for."""

    name = "small"
    scale = 0.8
    calls: list[str] = []

    def generate(self, request):
        from tasks.pictures import framed

        self.calls.append(request.prompt)
        scale = 1.0 if "Correction" in request.prompt else self.scale
        made = super().generate(request.model_copy(update={
            "width": round(request.width * scale), "height": round(request.height * scale)}))
        return type(made)(png=framed(made.png, request.width, request.height, self.name),
                          usage=made.usage)


@pytest.mark.parametrize("scale, enlarged", [(0.8, True), (0.4, False)])
def test_a_picture_smaller_than_asked_is_enlarged_when_close_and_made_again_otherwise(
        scale, enlarged, register_provider, monkeypatch, tmp_path):
    painting_with(Small, register_provider, monkeypatch, tmp_path, scale=scale)
    board = LocalPlanner().plan(VideoRequest(topic="tide pools", scenes=1)).storyboard

    summary = render_storyboard(board)

    review = review_of(summary, "s001-image")
    node = next(n for n in json.loads(summary.manifest.read_text())["nodes"]
                if n["id"] == "s001-image")
    asked = (node["params"]["width"], node["params"]["height"])
    store = open_store(os.environ["REELFLOW_STORE"])
    with Image.open(store.blob_path(review.attempts[0].digest)) as first:
        assert first.size == (round(asked[0] * scale), round(asked[1] * scale))
    if enlarged:
        assert len(Small.calls) == 1 and review.used.corrected.digest == node["outputs"]["image"]
        gate = store.lookup(review.used.gate_key)
        measures = json.loads(store.read_bytes(gate.outputs["report"]))
        assert measures["correction"]["enlarged"] == pytest.approx(1 / scale, abs=0.01)
    else:
        assert len(Small.calls) == 2
        [said] = review.attempts[0].reasons
        assert said == (f"the picture is {round(asked[0] * scale)}x{round(asked[1] * scale)}, "
                        f"asked {asked[0]}x{asked[1]}: too small to enlarge (2.5×, at most 1.5×)")
        assert review.used.number == 2 and review.used.corrected is None
    with Image.open(store.blob_path(node["outputs"]["image"])) as used:
        assert used.size == asked
    assert not review.flagged


def test_a_picture_of_another_shape_or_larger_than_asked_is_refused_before_it_is_stored():
    from tasks import checks
    from tasks.pictures import framed, png
    from tasks.providers.base import BrokenOutput

    asked = {"width": 360, "height": 640}

    def size(width, height):
        return png(Image.new("RGB", (width, height), (10, 120, 200)))

    for fits in [(360, 640), (288, 512), (180, 320), (181, 321)]:
        checks.picture(asked, {"image": size(*fits)})
    for wrong in [(360, 360), (400, 711), (300, 640)]:
        with pytest.raises(BrokenOutput, match=rf"the picture is {wrong[0]}x{wrong[1]}, "
                                               r"asked 360x640"):
            checks.picture(asked, {"image": size(*wrong)})
    # A provider's picture is cut to the asked shape, scaled down, never up.
    for made, framed_size in [((1024, 1024), (360, 640)), ((300, 300), (169, 300)),
                              ((720, 1280), (360, 640))]:
        with Image.open(io.BytesIO(framed(size(*made), 360, 640, "test"))) as picture:
            assert picture.size == framed_size
            checks.picture(asked, {"image": png(picture)})
