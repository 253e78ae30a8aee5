"""The video flows: plan → per scene (speech ∥ keyframe → clip) → compose → publish.

The flows only wire tasks together; every task stores its own output and comes back Cached
when the store already holds it. Tasks go through `.submit().result()`: a direct call would
hand back the Cached state itself rather than its data. Parameters are typed and titled:
Prefect turns them into the deployment's run form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

from prefect import flow
from prefect.futures import as_completed
from pydantic import Field

from config.settings import Settings, load_settings
from flows import report
from flows.choices import ProfileName, StyleName
from tasks.clips import animate_keyframe
from tasks.compose import compose_scenes
from tasks.images import render_keyframe
from tasks.manifest import RenderSummary
from tasks.plan import load_storyboard, plan_storyboard
from tasks.preflight import check_budget, check_keys
from tasks.publish import publish_video
from tasks.speech import synthesize_speech
from tasks.storyboard import MAX_SCENES, Aspect, Storyboard, VideoRequest

Profile = Annotated[ProfileName | None, Field(
    title="Profile", description="Providers to use: local (offline, free) or cloud")]
MaxCost = Annotated[float | None, Field(
    ge=0, title="Max cost (USD)", description="Refuse to spend more than this")]
Publish = Annotated[str | None, Field(
    title="Publish to", description="Also publish to gs://BUCKET/PREFIX")]
Out = Annotated[Path | None, Field(title="Output folder", description="Default ./out")]
ShortSide = Annotated[int | None, Field(
    ge=64, le=4096, title="Short side (px)", description="Default 1080, so 1080×1920 for 9:16")]


@flow(name="make-video", flow_run_name="make-{topic}")
def make_video(
    topic: Annotated[str | None, Field(title="Topic", description="What the video is about")] = None,
    scenes: Annotated[int, Field(ge=1, le=MAX_SCENES, title="Scenes")] = 6,
    aspect: Annotated[Aspect, Field(title="Aspect ratio")] = Aspect.portrait,
    style: Annotated[StyleName, Field(title="Visual style")] = StyleName("documentary"),
    profile: Profile = None,
    max_cost: MaxCost = None,
    script: Annotated[str | None, Field(
        title="Script", description="Your own script instead of a topic: one scene per paragraph")] = None,
    voice: Annotated[str, Field(title="Narrator voice")] = "en-us",
    language: Annotated[str, Field(title="Language")] = "en",
    music: Annotated[bool, Field(title="Background music")] = True,
    seed: Annotated[int, Field(ge=0, title="Seed for the visuals")] = 0,
    out: Out = None,
    short_side: ShortSide = None,
    publish: Publish = None,
) -> RenderSummary:
    """Plan a storyboard for a topic or script, then render and publish it."""
    request = VideoRequest(topic=topic, script=script, scenes=scenes, aspect=aspect,
                           style=StyleName(style).value, voice=voice, language=language,
                           music=music, seed=seed)
    settings = _settings(profile, out, short_side, publish, max_cost)
    planned = plan_storyboard.submit(request, settings).result()
    storyboard = load_storyboard(planned, settings)
    return _render(storyboard, settings, [planned])


@flow(name="render-storyboard", flow_run_name="render-{storyboard.title}")
def render_storyboard(storyboard: Storyboard, profile: Profile = None, out: Out = None,
                      short_side: ShortSide = None, publish: Publish = None,
                      max_cost: MaxCost = None) -> RenderSummary:
    """Render and publish a storyboard; only nodes whose inputs changed are generated."""
    return _render(storyboard, _settings(profile, out, short_side, publish, max_cost), [])


def _settings(profile, out, short_side, publish, max_cost) -> Settings:
    settings = load_settings(profile and ProfileName(profile).value, out=out,
                             short_side=short_side, publish=publish, max_cost=max_cost)
    check_keys(settings)
    return settings


def _render(storyboard: Storyboard, settings: Settings, upstream: list) -> RenderSummary:
    check_budget(storyboard, settings)
    report.storyboard_artifact(storyboard)
    scenes = storyboard.ordered_scenes()
    speak = _tagged(synthesize_speech, settings.speech)
    paint = _tagged(render_keyframe, settings.image)
    animate = _tagged(animate_keyframe, settings.video)
    speech = [speak.submit(scene, storyboard, settings) for scene in scenes]
    keyframes = []
    for scene in scenes:
        # With continuity each keyframe waits for the one before, its reference picture.
        previous = keyframes[-1] if settings.continuity and keyframes else None
        keyframes.append(paint.submit(scene, storyboard, settings, previous))
    clips = [animate.submit(scene, keyframe, storyboard, settings)
             for scene, keyframe in zip(scenes, keyframes)]
    progress = report.Progress(len(speech) + len(keyframes) + len(clips) + 2)
    for _ in as_completed([*speech, *keyframes, *clips]):
        progress.advance()
    # Results in order: the first failed node raises its own error here.
    voices, shots = [f.result() for f in speech], [f.result() for f in clips]
    composed = compose_scenes.submit(storyboard, voices, shots, settings).result()
    progress.advance()
    outcomes = [*upstream, *voices, *(f.result() for f in keyframes), *shots]
    summary = publish_video(storyboard, outcomes, composed, settings)
    progress.advance()
    report.summary_artifacts(summary)
    return summary


def _tagged(task, chain: list[str]):
    """The task tagged `provider:<preferred>`, which Prefect's tag concurrency limits match."""
    return task.with_options(tags={f"provider:{chain[0].split(':')[0]}"})
