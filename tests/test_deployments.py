"""The deployments reelflow serves, and what their run forms offer."""

from __future__ import annotations

from prefect.task_runners import ThreadPoolTaskRunner

from deployments.catalog import WEEKLY_TOPICS, deployments
from flows.batch import read_topics


def forms() -> dict[str, dict]:
    return {d.name: d._parameter_openapi_schema.model_dump() for d in
            deployments(ThreadPoolTaskRunner())}


def test_every_deployment_is_there():
    assert set(forms()) == {"make-video", "rerun-with-edits", "make-videos", "render-storyboard"}


def test_make_video_offers_selects_for_aspect_style_and_profile_with_help_text():
    form = forms()["make-video"]
    definitions = form["definitions"]
    assert definitions["Aspect"]["enum"] == ["9:16", "16:9", "1:1"]
    assert set(definitions["StyleName"]["enum"]) >= {"documentary", "neon", "noir"}
    assert set(definitions["ProfileName"]["enum"]) == {"local", "cloud", "ollama"}
    for field in ("topic", "scenes", "aspect", "style", "cast", "places", "options"):
        assert form["properties"][field]["description"], field
    options = definitions["RenderOptions"]["properties"]
    for field in ("profile", "out", "short_side", "publish", "max_cost", "quality", "sync_lips"):
        assert options[field]["description"], field


def test_every_video_flow_takes_the_same_render_options():
    for name, form in forms().items():
        assert form["properties"]["options"]["title"].lower() == "options", name
        assert set(form["definitions"]["RenderOptions"]["properties"]) == {
            "profile", "out", "short_side", "publish", "max_cost", "quality", "sync_lips"}, name


def test_rerun_with_edits_takes_each_scene_operation_as_fields_not_json():
    form = forms()["rerun-with-edits"]
    assert form["required"] == ["video"]
    assert set(form["properties"]) == {"video", "operations", "revert", "dry_run", "options"}
    kinds = form["properties"]["operations"]["items"]["discriminator"]["mapping"]
    assert set(kinds) == {"edit", "add", "delete", "move", "trim", "retake", "use"}
    operations = {op: form["definitions"][ref.rsplit("/", 1)[1]] for op, ref in kinds.items()}
    assert set(operations["edit"]["properties"]) == {
        "op", "scene", "narration", "lines", "visual_prompt", "camera", "on_screen_text", "shot",
        "intensity", "physics"}
    assert operations["trim"]["required"] == ["scene", "start", "end"]
    assert all(operation["title"] and operation["additionalProperties"] is False
               for operation in operations.values())


def test_the_weekly_schedule_carries_its_own_topics_and_starts_paused():
    batch = next(d for d in deployments(ThreadPoolTaskRunner()) if d.name == "make-videos")
    (schedule,) = batch.schedules
    assert schedule.parameters["topics_file"] == str(WEEKLY_TOPICS)
    assert schedule.active is False
    assert read_topics(str(WEEKLY_TOPICS)) == [
        "How honeybees make honey", "Why the sky is blue", "How tides work"]
