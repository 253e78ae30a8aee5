"""The image node: a scene's keyframe at the output size."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from cache import open_store
from config.settings import Settings
from tasks.nodes import Generator, Node, NodeOutcome, produce, reported
from tasks.providers.base import ImageGenerator, ImageRequest, Modality, Usage
from tasks.storyboard import Scene, Storyboard

IMAGE_VERSION = 1


def image_node(scene: Scene, storyboard: Storyboard, settings: Settings,
               generator: ImageGenerator, previous: NodeOutcome | None) -> tuple[Node, Generator]:
    width, height = storyboard.aspect.size(settings.short_side)
    inputs, references = {}, []
    if previous is not None and generator.accepts_reference_images:
        reference = previous.output("image")
        inputs["reference"] = reference.digest
        references.append(open_store(settings.store).blob_path(reference.digest))
    request = ImageRequest(prompt=scene.visual_prompt, style=storyboard.style, width=width,
                           height=height, seed=storyboard.seed, aspect=storyboard.aspect,
                           references=references)
    node = Node.served_by(generator, id=f"{scene.id}-image", kind="image",
                          version=IMAGE_VERSION, scene=scene.id, inputs=inputs,
                          params=request.model_dump(mode="json", exclude={"references"}),
                          expected=Usage(images=1))

    def generate(workdir):
        result = generator.generate(request)
        return {"image": (result.png, "image/png")}, result.usage

    return node, generate


def paint(scene: Scene, storyboard: Storyboard, settings: Settings,
          previous: NodeOutcome | None = None) -> NodeOutcome:
    return produce(settings, Modality.image,
                   lambda generator: image_node(scene, storyboard, settings, generator, previous))


@task(name="image", task_run_name="scene-{scene.id}-image", cache_policy=NO_CACHE)
def render_keyframe(scene: Scene, storyboard: Storyboard, settings: Settings,
                    previous: NodeOutcome | None = None) -> NodeOutcome:
    """Paint a scene's keyframe (consistent with the previous one, with `continuity`)."""
    return reported(paint(scene, storyboard, settings, previous))
