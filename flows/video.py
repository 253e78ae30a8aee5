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
from slugify import slugify

from cache import open_store
from config.settings import Settings, load_settings
from flows import report
from flows.choices import ProfileName, StyleName
from flows.limits import limited, provider_tag
from tasks.clips import animate_keyframe
from tasks.compose import compose_scenes
from tasks.images import render_keyframe
from tasks.manifest import RenderSummary
from tasks.plan import load_storyboard, plan_storyboard
from tasks.preflight import check_budget, check_keys
from tasks.publish import publish_video
from tasks.speech import synthesize_speech
from tasks.storyboard import MAX_SCENES, Aspect, Storyboard, VideoRequest

# Prefect builds each deployment's run form from these types (enums become select boxes) and
# takes each field's help text from the flow docstring's Args section.
Profile = ProfileName | None
MaxCost = Annotated[float, Field(ge=0)] | None
ShortSide = Annotated[int, Field(ge=64, le=4096)] | None


def _make_run_name() -> str:
    from prefect.runtime import flow_run

    return "make-" + (slugify(flow_run.parameters.get("topic") or "", max_length=40) or "script")


@flow(name="make-video", flow_run_name=_make_run_name)
def make_video(
    topic: str | None = None,
    scenes: Annotated[int, Field(ge=1, le=MAX_SCENES)] = 6,
    aspect: Aspect = Aspect.portrait,
    style: StyleName = StyleName("documentary"),
    profile: Profile = None,
    max_cost: MaxCost = None,
    script: str | None = None,
    voice: str = "en-us",
    language: str = "en",
    music: bool = True,
    seed: Annotated[int, Field(ge=0)] = 0,
    out: Path | None = None,
    short_side: ShortSide = None,
    publish: str | None = None,
) -> RenderSummary:
    """Plan a storyboard for a topic or script, then render and publish the video.

    Args:
        topic: What the video is about.
        scenes: How many scenes (each a few seconds).
        aspect: Frame shape: 9:16 for shorts, 16:9 for landscape, 1:1 square.
        style: Visual style, from config/styles.yaml.
        profile: Providers to use: local (offline, free) or cloud. Default: the server's.
        max_cost: Refuse to spend more than this many US dollars.
        script: Your own script instead of a topic: one scene per paragraph.
        voice: Narrator voice (an eSpeak voice; cloud voices are set in the profile).
        language: Narration language code, e.g. en.
        music: Background music under the narration.
        seed: Change it for different pictures from the same storyboard.
        out: Folder to publish into (default ./out).
        short_side: Short side of the video in pixels (default 1080).
        publish: Also publish to gs://BUCKET/PREFIX.
    """
    request = VideoRequest(topic=topic, script=script, scenes=scenes, aspect=aspect,
                           style=StyleName(style).value, voice=voice, language=language,
                           music=music, seed=seed)
    settings = run_settings(profile, out, short_side, publish, max_cost)
    planned = plan_storyboard.submit(request, settings).result()
    storyboard = load_storyboard(planned, settings)
    return render(storyboard, settings, [planned])


def _render_run_name() -> str:
    from prefect.runtime import flow_run

    title = flow_run.parameters["storyboard"]
    title = title.title if isinstance(title, Storyboard) else title.get("title", "")
    return "render-" + (slugify(title, max_length=40) or "storyboard")


@flow(name="render-storyboard", flow_run_name=_render_run_name)
def render_storyboard(storyboard: Storyboard, profile: Profile = None, out: Path | None = None,
                      short_side: ShortSide = None, publish: str | None = None,
                      max_cost: MaxCost = None) -> RenderSummary:
    """Render and publish a storyboard; only nodes whose inputs changed are generated.

    Args:
        storyboard: The storyboard, as `reelflow plan` writes it.
        profile: Providers to use: local (offline, free) or cloud.
        out: Folder to publish into (default ./out).
        short_side: Short side of the video in pixels (default 1080).
        publish: Also publish to gs://BUCKET/PREFIX.
        max_cost: Refuse to spend more than this many US dollars.
    """
    return render(storyboard, run_settings(profile, out, short_side, publish, max_cost), [])


def run_settings(profile, out, short_side, publish, max_cost) -> Settings:
    """A run's settings from its parameters (over environment, .env, profile), keys checked."""
    settings = load_settings(profile and ProfileName(profile).value, out=out,
                             short_side=short_side, publish=publish, max_cost=max_cost)
    check_keys(settings)
    return settings


def render(storyboard: Storyboard, settings: Settings, upstream: list) -> RenderSummary:
    """The body of every video flow; call it inside a flow run. While it runs, `cache gc`
    waits: what it generates is kept only once its manifest is published."""
    with open_store(settings.store).in_use():
        return _render(storyboard, settings, upstream)


def _render(storyboard: Storyboard, settings: Settings, upstream: list) -> RenderSummary:
    check_budget(storyboard, settings)
    report.storyboard_artifact(storyboard)
    scenes = storyboard.ordered_scenes()
    chains = {synthesize_speech: settings.speech, render_keyframe: settings.image,
              animate_keyframe: settings.video}
    tags = limited({provider_tag(chain[0]) for chain in chains.values()})
    speak, paint, animate = (_tagged(task, provider_tag(chain[0]), tags)
                             for task, chain in chains.items())
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
    summary = publish_video.submit(storyboard, outcomes, composed, settings).result()
    progress.advance()
    report.summary_artifacts(summary)
    return summary


def _tagged(task, tag: str, limited_tags: set[str]):
    """The task with its preferred provider's tag, where the server limits that tag."""
    return task.with_options(tags={tag}) if tag in limited_tags else task
