"""Scene operations as values, in-process: what each makes of a storyboard, what each refuses,
and where segments fall. (tests/test_scene_cli.py renders them.)"""

from __future__ import annotations

import random

import pytest
from pydantic import TypeAdapter, ValidationError

from flows.editing import (
    AddScene,
    DeleteScene,
    EditRefused,
    EditScene,
    MoveScene,
    NotFound,
    Operation,
    RetakeScene,
    TrimScene,
    UseTake,
    apply,
)
from tasks.history import History, load, save
from tasks.montage import SEGMENT_SCENES, segment_spans
from tasks.storyboard import MAX_SCENE_SECONDS, Scene, Storyboard, Takes, Trim


def board(count: int = 4) -> Storyboard:
    return Storyboard(title="Tides", scenes=[
        Scene(id=f"s{n:03d}", order=n, lines=[{"text": f"Line {n}."}], visual_prompt=f"sea {n}",
              duration=4) for n in range(1, count + 1)])


def ids(storyboard: Storyboard) -> list[str]:
    return [scene.id for scene in storyboard.ordered_scenes()]


def test_each_operation_makes_the_storyboard_it_says():
    start = board()
    assert ids(apply(start, [AddScene(after="s002", narration="The moon pulls.")])) == [
        "s001", "s002", "s005", "s003", "s004"]
    assert ids(apply(start, [AddScene(narration="First of all.")]))[0] == "s005"
    assert ids(apply(start, [DeleteScene(scene="s002")])) == ["s001", "s003", "s004"]
    assert ids(apply(start, [MoveScene(scene="s004", after="s001")])) == [
        "s001", "s004", "s002", "s003"]
    assert ids(apply(start, [MoveScene(scene="s003")])) == ["s003", "s001", "s002", "s004"]
    edited = apply(start, [EditScene(scene="s002", narration="New words.", camera="pan_left")])
    assert (edited.scene("s002").narration, edited.scene("s002").camera.value) == (
        "New words.", "pan_left")
    assert edited.scene("s002").visual_prompt == "sea 2"
    trimmed = apply(start, [TrimScene(scene="s001", start=0.5, end=2.5)])
    assert trimmed.scene("s001").trim == Trim(start=0.5, end=2.5)
    retaken = apply(start, [RetakeScene(scene="s001", media=["image", "speech"])])
    assert retaken.scene("s001").takes == Takes(image=2, clip=1, speech=2)
    back = apply(retaken, [UseTake(scene="s001", take=1)],
                 takes_made=lambda scene, media: {1, 2})
    assert back.scene("s001").takes == Takes(image=1, clip=1, speech=2)
    # Orders are renumbered; nothing else of a scene changes.
    assert [s.order for s in apply(start, [MoveScene(scene="s004")]).ordered_scenes()] == [0, 1, 2, 3]
    assert start == board()  # the storyboard given is never changed


def test_lines_replace_a_scenes_lines_and_a_silent_scene_takes_narration():
    start = board(2)
    spoken = apply(start, [EditScene(scene="s001", lines=[{"text": "One."}, {"text": "Two."}])])
    assert [line.text for line in spoken.scene("s001").lines] == ["One.", "Two."]
    # A music video's or an ad's scene may say nothing (an explainer's may not: built as is).
    silent = start.model_copy(update={"scenes": [
        scene.model_copy(update={"lines": []}) if scene.id == "s002" else scene
        for scene in start.scenes]})
    narrated = apply(silent, [EditScene(scene="s002", narration="Now it speaks.")])
    assert [(line.speaker, line.text) for line in narrated.scene("s002").lines] == [
        ("narrator", "Now it speaks.")]


def test_a_new_scene_never_takes_an_id_any_version_used():
    history = History.begun(board(3))
    deleted = apply(board(3), [DeleteScene(scene="s003")])
    history = history.then(deleted, "delete s003")
    added = apply(deleted, [AddScene(after="s002", narration="Again.")],
                  known_ids=history.scene_ids())
    assert ids(added) == ["s001", "s002", "s004"]


def test_a_retake_numbers_past_every_take_made_and_use_takes_only_those():
    made = {1, 2, 3}
    retaken = apply(board(), [RetakeScene(scene="s002", media=["clip"])],
                    takes_made=lambda scene, media: made if media == "clip" else {1})
    assert retaken.scene("s002").takes.clip == 4
    with pytest.raises(EditRefused, match=r"^use take: s002 has no image take 3 \(made: 1\)"):
        apply(board(), [UseTake(scene="s002", take=3)], takes_made=lambda scene, media: {1})


BAD = {
    "unknown scene": ([DeleteScene(scene="s009")], NotFound, r"^delete scene: no scene 's009'"),
    "unknown after": ([MoveScene(scene="s001", after="s009")], NotFound, r"^move after: no scene"),
    "after itself": ([MoveScene(scene="s002", after="s002")], EditRefused,
                     r"^move after: a scene cannot move after itself"),
    "past the clip": ([TrimScene(scene="s001", start=1, end=9)], EditRefused,
                      r"^trim end: the clip of s001 lasts 6 s; 9 s is past its end"),
    "too short": ([TrimScene(scene="s001", start=1, end=1.1)], EditRefused,
                  r"^trim end: a trim lasts at least 0.2 s"),
    "nothing to edit": ([EditScene(scene="s001")], EditRefused, r"^edit scene: give a narration"),
    "deleted then edited": ([DeleteScene(scene="s001"), EditScene(scene="s001", narration="x")],
                            EditRefused, r"^edit scene: s001 is deleted earlier in this request"),
    "narration and lines": ([EditScene(scene="s001", narration="x", lines=[{"text": "y"}])],
                            EditRefused, r"^edit lines: give narration or lines, not both"),
    "a stranger's line": ([EditScene(scene="s001", lines=[{"speaker": "kit", "text": "Hi."}])],
                          EditRefused, r"^storyboard: .*kit"),
    "two trims": ([TrimScene(scene="s001", start=0, end=1), TrimScene(scene="s001", start=0, end=2)],
                  EditRefused, r"^trim scene: s001 has two trim operations"),
}


@pytest.mark.parametrize("operations, error, message", BAD.values(), ids=BAD.keys())
def test_a_bad_operation_is_refused_naming_the_operation_and_field(operations, error, message):
    with pytest.raises(error, match=message):
        apply(board(), operations, clip_seconds=lambda scene: 6.0)


def test_a_new_take_of_the_picture_or_clip_is_shown_whole_and_a_long_new_scene_fits():
    trimmed = apply(board(), [TrimScene(scene="s001", start=0.5, end=2.5)])
    assert apply(trimmed, [RetakeScene(scene="s001", media=["speech"])]).scene("s001").trim
    assert apply(trimmed, [RetakeScene(scene="s001", media=["clip"])]).scene("s001").trim is None
    assert apply(trimmed, [UseTake(scene="s001", take=1)]).scene("s001").trim is None
    long = apply(board(), [AddScene(narration="a " * 450)])  # more than two minutes of words
    assert long.ordered_scenes()[0].duration == MAX_SCENE_SECONDS


def test_a_storyboard_edited_by_hand_since_it_was_published_is_the_next_version(tmp_path):
    folder = tmp_path / "tides-0123456789ab"
    folder.mkdir()
    history = History.begun(board()).published(folder.name)
    save(history, folder)
    edited = apply(board(), [EditScene(scene="s001", narration="By hand.")])
    (folder / "storyboard.json").write_text(board().model_dump_json())
    assert load(folder / "storyboard.json") == history
    (folder / "storyboard.json").write_text(edited.model_dump_json(indent=2))
    loaded = load(folder / "storyboard.json")
    assert [v.version for v in loaded.versions] == [1, 2] and loaded.current.storyboard == edited
    assert loaded.current.change == "storyboard.json edited by hand"


def test_the_last_scene_cannot_be_deleted():
    with pytest.raises(EditRefused, match=r"^delete scene: it is the only scene left"):
        apply(board(1), [DeleteScene(scene="s001")])


def test_operations_arrive_as_json_with_their_kind_and_bad_fields_are_named():
    operations = TypeAdapter(list[Operation]).validate_python([
        {"op": "trim", "scene": "s001", "start": 0.5, "end": 2},
        {"op": "retake", "scene": "s002", "media": ["clip"]}])
    assert [type(op) for op in operations] == [TrimScene, RetakeScene]
    with pytest.raises(ValidationError) as raised:
        TypeAdapter(list[Operation]).validate_python([{"op": "trim", "scene": "s001", "start": -1,
                                                       "end": 2}])
    assert raised.value.errors()[0]["loc"] == (0, "trim", "start")
    with pytest.raises(ValidationError):
        TypeAdapter(list[Operation]).validate_python([{"op": "explode", "scene": "s001"}])


def _spans(scene_ids: list[str]) -> list[tuple[str, ...]]:
    return [tuple(scene_ids[span.start:span.stop]) for span in segment_spans(scene_ids)]


def test_segments_are_chosen_by_scene_ids_so_an_insertion_moves_no_later_segment():
    """Each segment is at most SEGMENT_SCENES long; adding or deleting a scene changes the
    segments around it and no segment that starts at a chosen scene after it."""
    generator = random.Random(7)
    for trial in range(200):
        scene_ids = [f"s{n:03d}" for n in generator.sample(range(1, 999), generator.randint(1, 60))]
        spans = _spans(scene_ids)
        assert [i for span in spans for i in span] == scene_ids
        assert max(map(len, spans)) <= SEGMENT_SCENES
        at = generator.randint(0, len(scene_ids))
        added = _spans([*scene_ids[:at], "new", *scene_ids[at:]])
        # Past the first segment start that the id chose (not the length cap) after the
        # insertion, the segments are the same ones.
        chosen = [span for span in spans if span[0] in scene_ids[at + 1:] and _chosen(span[0])]
        if chosen:
            tail = spans[spans.index(chosen[0]):]
            assert added[-len(tail):] == tail, trial


def _chosen(scene_id: str) -> bool:
    """Whether a segment starts at this scene by its id (not only by the length cap)."""
    return segment_spans(["x", scene_id]) == [range(0, 1), range(1, 2)]
