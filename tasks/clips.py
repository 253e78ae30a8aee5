"""The clip node: a keyframe set in motion for the scene's target duration.

A model that only makes some lengths or shapes gets the nearest it can make; compose holds
the last frame or trims to the scene's length, and crops to the video's shape.
"""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from cache import open_store
from config.settings import Settings
from tasks.nodes import Generator, Node, NodeOutcome, produce, reported
from tasks.providers.base import ClipAnimator, ClipRequest, Modality, Usage
from tasks.storyboard import Scene, Storyboard

CLIP_VERSION = 1


def clip_node(scene: Scene, keyframe: NodeOutcome, storyboard: Storyboard, settings: Settings,
              animator: ClipAnimator) -> tuple[Node, Generator]:
    image = keyframe.output("image")
    aspect = animator.fit_aspect(storyboard.aspect)
    width, height = aspect.size(settings.short_side)
    request = ClipRequest(image=open_store(settings.store).blob_path(image.digest),
                          prompt=scene.visual_prompt if animator.uses_prompt else "",
                          motion=scene.camera,
                          duration=animator.fit_duration(scene.duration), width=width,
                          height=height, fps=settings.fps, aspect=aspect)
    node = Node.served_by(animator, id=f"{scene.id}-clip", kind="clip", version=CLIP_VERSION,
                          scene=scene.id, params=request.model_dump(mode="json", exclude={"image"}),
                          inputs={"image": image.digest},
                          expected=Usage(video_seconds=request.duration))

    def generate(workdir):
        result = animator.animate(request, workdir)
        return {"clip": (result.video, "video/mp4")}, result.usage

    return node, generate


def animate(scene: Scene, keyframe: NodeOutcome, storyboard: Storyboard,
            settings: Settings) -> NodeOutcome:
    return produce(settings, Modality.video,
                   lambda animator: clip_node(scene, keyframe, storyboard, settings, animator))


@task(name="clip", task_run_name="scene-{scene.id}-clip", cache_policy=NO_CACHE)
def animate_keyframe(scene: Scene, keyframe: NodeOutcome, storyboard: Storyboard,
                     settings: Settings) -> NodeOutcome:
    """Turn a scene's keyframe into a motion clip."""
    return reported(animate(scene, keyframe, storyboard, settings))
