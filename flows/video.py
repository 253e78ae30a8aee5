"""The video flows: plan → per scene (speech ∥ keyframe → clip) → compose → publish.

The flows only wire tasks together; every task stores its own output and comes back Cached
when the store already holds it. Tasks go through `.submit().result()`: a direct call would
hand back the Cached state itself rather than its data.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow

from config.settings import Settings, load_settings
from tasks.clips import animate_keyframe
from tasks.compose import compose_scenes
from tasks.images import render_keyframe
from tasks.manifest import RenderSummary
from tasks.plan import load_storyboard, plan_storyboard
from tasks.preflight import check_budget, check_keys
from tasks.publish import publish_video
from tasks.speech import synthesize_speech
from tasks.storyboard import Storyboard, VideoRequest


@flow(name="make-video", flow_run_name="make-{request.scenes}-scenes")
def make_video(request: VideoRequest, profile: str | None = None, out: Path | None = None,
               short_side: int | None = None, publish: str | None = None,
               max_cost: float | None = None) -> RenderSummary:
    """Plan a storyboard for a topic or script, then render and publish it."""
    settings = load_settings(profile, out=out, short_side=short_side, publish=publish,
                             max_cost=max_cost)
    check_keys(settings)
    planned = plan_storyboard.submit(request, settings).result()
    storyboard = load_storyboard(planned, settings)
    return _render(storyboard, settings, [planned])


@flow(name="render-storyboard", flow_run_name="render-{storyboard.title}")
def render_storyboard(storyboard: Storyboard, profile: str | None = None,
                      out: Path | None = None, short_side: int | None = None,
                      publish: str | None = None, max_cost: float | None = None) -> RenderSummary:
    """Render and publish a storyboard; only nodes whose inputs changed are generated."""
    settings = load_settings(profile, out=out, short_side=short_side, publish=publish,
                             max_cost=max_cost)
    check_keys(settings)
    return _render(storyboard, settings, [])


def _render(storyboard: Storyboard, settings: Settings, upstream: list) -> RenderSummary:
    check_budget(storyboard, settings)
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
    # Waiting here surfaces the first failed node's own error rather than a stalled compose.
    voices, shots = [f.result() for f in speech], [f.result() for f in clips]
    composed = compose_scenes.submit(storyboard, voices, shots, settings).result()
    outcomes = [*upstream, *voices, *(f.result() for f in keyframes), *shots]
    return publish_video(storyboard, outcomes, composed, settings)


def _tagged(task, chain: list[str]):
    """The task tagged `provider:<preferred>`, which Prefect's tag concurrency limits match."""
    return task.with_options(tags={f"provider:{chain[0].split(':')[0]}"})
