"""The provider registry: backends are found by modality and name.

Built-ins and third-party packages register through the same hook: a function
`register_providers(register)`, found for plug-ins under the `reelflow.providers` entry
point group. The registry fills itself on first use, not at import.
"""

from __future__ import annotations

import threading
from importlib.metadata import entry_points

from pydantic import ValidationError

from tasks.providers.base import Modality, Provider

ENTRY_POINT_GROUP = "reelflow.providers"

_providers: dict[tuple[Modality, str], type[Provider]] = {}
_loaded = False
_loading = threading.Lock()  # tasks in several threads may ask first


class ProviderConfigError(ValueError):
    """Settings give a provider an option it does not have, or a value it does not take."""


class UnknownProviderError(ProviderConfigError, LookupError):
    """Settings name a provider that is not registered."""


def register(provider: type[Provider]) -> None:
    """Make `provider` available under its modality and name (replacing one of that name)."""
    _providers[(provider.modality, provider.name)] = provider


def register_providers(register) -> None:
    """The built-in backends, registered through the same hook plug-ins use."""
    from tasks.providers.elevenlabs import ElevenLabsSpeech
    from tasks.providers.espeak import EspeakSpeech
    from tasks.providers.gemini import GeminiImage, GeminiPlanner
    from tasks.providers.kenburns import KenBurnsAnimator
    from tasks.providers.local_embedding import LocalEmbedding
    from tasks.providers.local_image import LocalImage
    from tasks.providers.local_lipsync import LocalLipsync
    from tasks.providers.local_planner import LocalPlanner
    from tasks.providers.openai_compatible import OpenAICompatiblePlanner
    from tasks.providers.replicate import (
        ReplicateAnimator, ReplicateEmbedding, ReplicateImage, ReplicateLipsync)
    from tasks.providers.veo import VeoAnimator
    from tasks.providers.vertex_embedding import VertexEmbedding

    for provider in (LocalPlanner, EspeakSpeech, LocalImage, KenBurnsAnimator,
                     GeminiPlanner, OpenAICompatiblePlanner, GeminiImage, ReplicateImage,
                     ElevenLabsSpeech, VeoAnimator, ReplicateAnimator, LocalEmbedding,
                     ReplicateEmbedding, VertexEmbedding, LocalLipsync, ReplicateLipsync):
        register(provider)


def _ensure_loaded() -> None:
    global _loaded
    with _loading:
        if _loaded:
            return
        register_providers(register)
        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            entry_point.load()(register)
        _loaded = True


def names(modality: Modality | None = None) -> list[str]:
    """The registered provider names of `modality` (of every modality when None)."""
    _ensure_loaded()
    return sorted({name for kind, name in _providers if modality in (None, kind)})


def named(name: str) -> list[type[Provider]]:
    """The providers registered as `name`, in any modality ("local" plans and paints)."""
    _ensure_loaded()
    return [provider for (_, known), provider in sorted(_providers.items(),
                                                        key=lambda item: item[0][0].value)
            if known == name]


def create(modality: Modality, spec: str, options: dict | None = None) -> Provider:
    """The provider `spec` for `modality`: a name ("veo"), or a name and a model
    ("replicate:black-forest-labs/flux-schnell"), configured with `options`."""
    _ensure_loaded()
    name, _, model = spec.partition(":")
    if model:
        options = {**(options or {}), "model": model}
    try:
        provider = _providers[(modality, name)]
    except KeyError:
        known = ", ".join(names(modality)) or "none"
        raise UnknownProviderError(
            f"{modality.value}: no provider named {name!r} (known: {known})"
        ) from None
    try:
        return provider(options)
    except ValidationError as error:
        raise ProviderConfigError(_options_error(name, provider, error)) from None


def options_of(provider_options: dict[str, dict], modality: Modality, name: str) -> dict:
    """A provider's options: those given for its name (every modality's provider of that name
    takes them), then those given for "MODALITY:NAME" (its alone, e.g. "embedding:local")."""
    return {**provider_options.get(name, {}),
            **provider_options.get(f"{modality.value}:{name}", {})}


def check_options(key: str, options: dict) -> None:
    """Raise ProviderConfigError unless a provider registered as `key` ("NAME", or
    "MODALITY:NAME") takes `options`."""
    qualifier, _, name = key.rpartition(":")
    modalities = [m for m in Modality if m.value == qualifier] if qualifier else list(Modality)
    providers = [p for p in named(name) if p.modality in modalities]
    if not providers:
        raise UnknownProviderError(f"provider_options: no provider named {key!r} "
                                   f"(known: {', '.join(names())})")
    problems = []
    for provider in providers:
        try:
            provider.Options(**options)
            return
        except ValidationError as error:
            problems.append((error.errors()[0]["type"] == "extra_forbidden", provider, error))
    # A provider that has the option but not that value says more than one without it.
    _, provider, error = min(problems, key=lambda problem: problem[0])
    raise ProviderConfigError(_options_error(key, provider, error))


def _options_error(name: str, provider: type[Provider], error: ValidationError) -> str:
    """The first problem of a provider's options, in one line naming the option."""
    first = error.errors()[0]
    option = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        valid = ", ".join(sorted(provider.Options.model_fields))
        return f"provider_options.{name}: unknown option {option!r} (valid: {valid})"
    return f"provider_options.{name}.{option}: {first['msg'].removeprefix('Value error, ')}"
