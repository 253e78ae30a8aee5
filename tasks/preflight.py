"""Checks before anything is spent: every configured provider has its key, and the storyboard's
estimated cost (nodes already stored count 0) fits --max-cost."""

from __future__ import annotations

from config.pricing import cost_usd, price_table
from config.secrets import secret
from cache import open_store
from config.settings import Settings
from tasks.budget import BudgetExceeded
from tasks.clips import clip_node
from tasks.images import image_node
from tasks.nodes import NodeOutcome, expected_cost, provider_chain
from tasks.providers.base import Modality
from tasks.speech import speech_node
from tasks.storyboard import Storyboard


def check_keys(settings: Settings) -> None:
    """Raise MissingSecretError naming the first key a configured provider lacks."""
    for modality in Modality:
        for provider in provider_chain(settings, modality):
            if provider.needs_key:
                secret(provider.needs_key)


def estimate_usd(storyboard: Storyboard, settings: Settings) -> float:
    """What rendering `storyboard` with the preferred providers would cost now."""
    store = open_store(settings.store)
    synthesizer, generator, animator = (provider_chain(settings, m)[0]
                                        for m in (Modality.speech, Modality.image, Modality.video))
    total, previous = 0.0, None
    for scene in storyboard.ordered_scenes():
        speech, _ = speech_node(scene, storyboard, settings, synthesizer)
        total += 0.0 if store.lookup(speech.key) else expected_cost(settings, speech)
        image, _ = image_node(scene, storyboard, settings, generator,
                              previous if settings.continuity else None)
        record = store.lookup(image.key)
        if record is None:
            total += expected_cost(settings, image)
            previous = None
            seconds = animator.fit_duration(scene.duration)
            total += cost_usd(animator.name, animator.model, {"video_seconds": seconds},
                              price_table(settings.prices))
            continue
        previous = NodeOutcome(id=image.id, kind="image", scene=scene.id, status="cached",
                               record=record, seconds=0.0)
        clip, _ = clip_node(scene, previous, storyboard, settings, animator)
        total += 0.0 if store.lookup(clip.key) else expected_cost(settings, clip)
    return round(total, 6)


def check_budget(storyboard: Storyboard, settings: Settings) -> None:
    if settings.max_cost is None:
        return
    estimate = estimate_usd(storyboard, settings)
    if estimate > settings.max_cost:
        raise BudgetExceeded(f"max-cost: this render is estimated at ${estimate:.4f}, over the "
                             f"limit of ${settings.max_cost:.4f}; nothing was generated")
