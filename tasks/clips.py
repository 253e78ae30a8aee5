"""The clip node: a keyframe set in motion for the scene's target duration.

A model that only makes some lengths or shapes gets the nearest it can make; compose holds
the last frame or trims to the scene's length, and crops to the video's shape.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cache import open_store
from config.settings import Settings
from tasks.nodes import Generator, Node
from tasks.prompts import scene_prompt
from tasks.providers.base import ClipAnimator, ClipRequest, Usage
from tasks.storyboard import Storyboard

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

CLIP_VERSION = 1


def describe(step: Step, storyboard: Storyboard, settings: Settings, animator: ClipAnimator,
             upstream: Upstream) -> tuple[Node, Generator]:
    scene = storyboard.scene(step.scene)
    image = upstream[f"{scene.id}-image"]["image"]
    aspect = animator.fit_aspect(storyboard.aspect)
    width, height = aspect.size(settings.short_side)
    params = dict(prompt=scene_prompt(scene, storyboard) if animator.uses_prompt else "",
                  motion=scene.camera, duration=animator.fit_duration(scene.duration),
                  width=width, height=height, fps=settings.fps, aspect=aspect)
    node = Node.served_by(animator, id=step.id, kind="clip", version=CLIP_VERSION,
                          scene=scene.id, inputs={"image": image.digest},
                          params={name: getattr(value, "value", value)  # enums as JSON
                                  for name, value in params.items()},
                          expected=Usage(video_seconds=params["duration"]))

    def generate(workdir):
        request = ClipRequest(image=open_store(settings.store).blob_path(image.digest), **params)
        result = animator.animate(request, workdir)
        return {"clip": (result.video, "video/mp4")}, result.usage

    return node, generate
