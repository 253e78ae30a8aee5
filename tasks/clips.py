"""The clip node: a keyframe set in motion for the scene's target duration."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from config.settings import Settings
from tasks.nodes import Node, NodeOutcome, open_store, produce, provider_for, reported
from tasks.providers.base import ClipRequest, Modality
from tasks.storyboard import Scene, Storyboard

CLIP_VERSION = 1


def animate(scene: Scene, keyframe: NodeOutcome, storyboard: Storyboard,
            settings: Settings) -> NodeOutcome:
    animator = provider_for(settings, Modality.video)
    image = keyframe.output("image")
    width, height = storyboard.aspect.size(settings.short_side)
    request = ClipRequest(image=open_store(settings.store).blob_path(image.digest),
                          motion=scene.camera, duration=scene.duration, width=width,
                          height=height, fps=settings.fps, aspect=storyboard.aspect)
    node = Node.served_by(animator, id=f"{scene.id}-clip", kind="clip", version=CLIP_VERSION,
                          scene=scene.id, params=request.model_dump(mode="json", exclude={"image"}),
                          inputs={"image": image.digest})

    def generate(workdir):
        result = animator.animate(request, workdir)
        return {"clip": (result.video, "video/mp4")}, result.usage

    return produce(settings, node, generate)


@task(name="clip", task_run_name="scene-{scene.id}-clip", cache_policy=NO_CACHE)
def animate_keyframe(scene: Scene, keyframe: NodeOutcome, storyboard: Storyboard,
                     settings: Settings) -> NodeOutcome:
    """Turn a scene's keyframe into a motion clip."""
    return reported(animate(scene, keyframe, storyboard, settings))
