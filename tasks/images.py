"""The image node: a scene's keyframe at the output size."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from config.settings import Settings
from tasks.nodes import Node, NodeOutcome, produce, provider_for, reported
from tasks.providers.base import ImageRequest, Modality
from tasks.storyboard import Scene, Storyboard

IMAGE_VERSION = 1


def paint(scene: Scene, storyboard: Storyboard, settings: Settings) -> NodeOutcome:
    generator = provider_for(settings, Modality.image)
    width, height = storyboard.aspect.size(settings.short_side)
    request = ImageRequest(prompt=scene.visual_prompt, style=storyboard.style, width=width,
                           height=height, seed=storyboard.seed)
    node = Node.served_by(generator, id=f"{scene.id}-image", kind="image",
                          version=IMAGE_VERSION, scene=scene.id,
                          params=request.model_dump(), inputs={})

    def generate(workdir):
        result = generator.generate(request)
        return {"image": (result.png, "image/png")}, result.usage

    return produce(settings, node, generate)


@task(name="image", task_run_name="scene-{scene.id}-image", cache_policy=NO_CACHE)
def render_keyframe(scene: Scene, storyboard: Storyboard, settings: Settings) -> NodeOutcome:
    """Paint a scene's keyframe."""
    return reported(paint(scene, storyboard, settings))
