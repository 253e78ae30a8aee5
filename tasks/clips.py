"""The clip node: a keyframe set in motion for the scene's target duration.

A model that only makes some lengths or shapes gets the nearest it can make; compose holds
the last frame or trims to the scene's length, and crops to the video's shape. Whatever size
and frame rate a model returns, the stored clip has the node's (re-encoded here, once, for
every provider), so tasks/checks.py can hold every clip to what its node asked.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pathlib import Path

from cache import open_store
from config.settings import Settings
from tasks.ffmpeg import INTERMEDIATE_VIDEO_ARGS, MediaError, probe, run_ffmpeg
from tasks.nodes import Generator, Node
from tasks.prompts import scene_prompt
from tasks.providers.base import BrokenOutput, ClipAnimator, ClipRequest, Usage
from tasks.storyboard import TAKE_PARAMS, Storyboard, take_params

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

CLIP_VERSION = 1


def describe(step: Step, storyboard: Storyboard, settings: Settings, animator: ClipAnimator,
             upstream: Upstream) -> tuple[Node, Generator]:
    scene = storyboard.scene(step.scene)
    image = upstream[f"{scene.id}-image"]["image"]
    aspect = animator.fit_aspect(storyboard.aspect)
    width, height = aspect.size(settings.short_side)
    prompt = "\n".join(filter(None, [scene_prompt(scene, storyboard), step.correction]))
    params = dict(prompt=prompt if animator.uses_prompt else "",
                  motion=scene.camera, duration=animator.fit_duration(scene.duration),
                  width=width, height=height, fps=settings.fps, aspect=aspect)
    params.update(take_params(scene.takes.clip, attempt=step.attempt))
    if not animator.exact_length:  # then any length it makes is kept (tasks/checks.py)
        params["any_length"] = True
    node = Node.served_by(animator, id=step.id, kind="clip", version=CLIP_VERSION,
                          scene=scene.id, inputs={"image": image.digest},
                          params={name: getattr(value, "value", value)  # enums as JSON
                                  for name, value in params.items()},
                          expected=Usage(video_seconds=params["duration"]))

    def generate(workdir):
        asked = {name: value for name, value in params.items() if name not in TAKE_PARAMS}
        request = ClipRequest(image=open_store(settings.store).blob_path(image.digest), **asked)
        result = animator.animate(request, workdir)
        video = conformed(result.video, width, height, settings.fps, result.usage)
        return {"clip": (video, "video/mp4")}, result.usage

    return node, generate


def conformed(video: Path, width: int, height: int, fps: int, usage: Usage) -> Path:
    """`video` at `width`×`height` (crop-filled) and `fps`, without audio: as it is when it
    already is, else re-encoded beside it. One that cannot be read is a broken output, paid
    for with `usage`."""
    try:
        info = probe(video)
        if (info.width, info.height) == (width, height) and info.fps == fps \
                and not info.has_audio:
            return video
        target = video.with_name(f"conformed-{video.name}")
        size = f"{width}:{height}"
        run_ffmpeg(["-i", str(video), "-map", "0:v:0", "-vf",
                    f"scale={size}:force_original_aspect_ratio=increase,crop={size},"
                    f"fps={fps}", "-an", *INTERMEDIATE_VIDEO_ARGS, str(target)],
                   what="conform the clip")
    except MediaError as error:
        raise BrokenOutput(f"the clip does not decode: {error}", usage) from None
    return target
