"""The image node: a scene's keyframe at the output size, drawn with the references of its cast
and its location (never with another keyframe, so keyframes are made in parallel and an edit
to one scene redoes that scene alone)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cache import open_store
from config.settings import Settings
from tasks import end_card
from tasks.nodes import Generator, Node
from tasks.prompts import scene_prompt
from tasks.providers.base import ImageGenerator, ImageReference, ImageRequest, Usage
from tasks.storyboard import TAKE_PARAMS, Storyboard, take_params

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

IMAGE_VERSION = 1


def describe(step: Step, storyboard: Storyboard, settings: Settings, generator: ImageGenerator,
             upstream: Upstream) -> tuple[Node, Generator]:
    scene = storyboard.scene(step.scene)
    if storyboard.end_card(scene):
        return end_card.describe(scene.id, storyboard, settings, upstream)
    width, height = storyboard.aspect.size(settings.short_side)
    # A model that takes no pictures still gets the bible in its prompt; only one that does
    # depends on the references' bytes.
    subjects = storyboard.drawn_from(scene) if generator.accepts_reference_images else []
    references = [upstream[f"ref-{subject.id}"]["image"].digest for subject in subjects]
    prompt = "\n".join(filter(None, [scene_prompt(scene, storyboard), step.correction]))
    params = dict(prompt=prompt, style=storyboard.style, width=width, height=height,
                  seed=storyboard.seed, aspect=storyboard.aspect.value)
    if storyboard.director:  # its colours, for a generator that draws them (the prompt says them)
        params["palette"] = storyboard.director.palette
    params.update(take_params(scene.takes.image, storyboard.seed, step.attempt))
    if generator.draws_text:  # else never sent, so an edit of the text redraws nothing
        params["text"] = scene.on_screen_text
    node = Node.served_by(generator, id=step.id, kind="image", version=IMAGE_VERSION,
                          scene=scene.id, params=params, expected=Usage(images=1),
                          inputs={f"reference-{i}": d for i, d in enumerate(references)})

    def generate(workdir):
        store = open_store(settings.store)
        asked = {name: value for name, value in params.items() if name not in TAKE_PARAMS}
        result = generator.generate(ImageRequest(**asked, references=[
            ImageReference(path=store.blob_path(digest), name=subject.name or subject.id,
                           subject=subject.kind)
            for digest, subject in zip(references, subjects)]))
        return {"image": (result.png, "image/png")}, result.usage

    return node, generate
