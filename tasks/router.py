"""The shot router: each scene's clip goes to the video chain its shot calls for.

`quality` (unless off) picks a rule set of the router file (config/router.yaml, or the settings' `router`);
the first rule whose conditions on the scene's `shot`, `intensity` and `physics` hold gives the
chain; a scene no rule routes, and every scene when the quality is off, uses the profile's `video`.
A clip's key names its provider, so a rule that sends a scene elsewhere regenerates that
scene's clip alone.
"""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from config.catalog import CONFIG_DIR
from config.settings import ProviderChain, Settings
from tasks.providers.registry import ProviderConfigError
from tasks.storyboard import Scene, ShotSize

ROUTER_FILE = CONFIG_DIR / "router.yaml"


class RouterError(ProviderConfigError):
    """The router file cannot be what its author meant: one line naming the file and rule."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Span(_Strict):
    min: float = Field(0.0, ge=0, le=1)
    max: float = Field(1.0, ge=0, le=1)


class When(_Strict):
    shot: list[ShotSize] | None = None
    intensity: Span | None = None
    physics: bool | None = None

    def holds(self, scene: Scene) -> bool:
        return ((self.shot is None or scene.shot in self.shot)
                and (self.intensity is None
                     or self.intensity.min <= scene.intensity <= self.intensity.max)
                and (self.physics is None or scene.physics == self.physics))


class Rule(_Strict):
    name: str = Field(min_length=1, max_length=100)
    when: When = When()
    video: ProviderChain


class Router(_Strict):
    draft: list[Rule] = []
    standard: list[Rule] = []
    premium: list[Rule] = []


class RouteCost(BaseModel):
    """What the storyboard's clips cost at list price as routed, next to all of them on the
    first provider of the profile's video chain (the model a router-less render would use)."""

    quality: str
    routed_usd: float
    unrouted_usd: float
    unrouted: str  # that provider
    scenes: dict[str, int]  # first provider of each route → its scenes

    def said(self) -> str:
        spread = ", ".join(f"{count} on {name}" for name, count in self.scenes.items())
        return (f"router ({self.quality}): clips ${self.routed_usd:.4f} as routed ({spread}); "
                f"${self.unrouted_usd:.4f} all on {self.unrouted}")


def router(settings: Settings) -> Router:
    """The settings' router file, read and checked; RouterError names the file and rule."""
    path = settings.router or ROUTER_FILE
    return _read(Path(path))


def video_chain(scene: Scene, settings: Settings) -> list[str]:
    """The video chain that makes `scene`'s clip."""
    if settings.quality == "off":
        return settings.video
    return next((rule.video for rule in rules(settings) if rule.when.holds(scene)),
                settings.video)


def rules(settings: Settings) -> list[Rule]:
    return [] if settings.quality == "off" else getattr(router(settings), settings.quality)


def routed(scene: Scene, settings: Settings) -> Settings:
    """`settings` with the video chain of `scene`."""
    chain = video_chain(scene, settings)
    return settings if chain == settings.video else settings.model_copy(update={"video": chain})


def check(settings: Settings) -> list[Settings]:
    """The settings of every video chain a render may use (the profile's, then its rules'),
    each rule's providers known: RouterError names the file and rule of one that is not."""
    from tasks.nodes import provider_chain
    from tasks.providers.base import Modality

    checked = [settings]
    for number, rule in enumerate(rules(settings), 1):
        chained = settings.model_copy(update={"video": rule.video})
        try:
            provider_chain(chained, Modality.video)
        except ProviderConfigError as error:
            raise RouterError(f"{settings.router or ROUTER_FILE}: {settings.quality} rule "
                              f"{number} ({rule.name}): {error}") from None
        checked.append(chained)
    return checked


_read_cache: dict[tuple[Path, float], Router] = {}


def _read(path: Path) -> Router:
    try:
        stamp = path.stat().st_mtime
    except OSError as error:
        raise RouterError(f"router: cannot read {path}: {error.strerror}") from None
    if (path, stamp) in _read_cache:
        return _read_cache[path, stamp]
    try:
        table = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        parsed = Router.model_validate(table)
    except yaml.YAMLError as error:
        raise RouterError(f"{path}: not YAML: {str(error).splitlines()[0]}") from None
    except ValidationError as error:
        raise RouterError(f"{path}: {_where(error, table)}") from None
    _read_cache[path, stamp] = parsed
    return parsed


def _where(error: ValidationError, table) -> str:
    """The first problem, naming the rule set, the rule (number and name) and the field."""
    first = error.errors()[0]
    location = list(first["loc"])
    if len(location) >= 2 and isinstance(location[1], int) and isinstance(table, dict):
        quality, number = location[0], location[1]
        rule = (table.get(quality) or [None] * (number + 1))[number]
        name = f" ({rule['name']})" if isinstance(rule, dict) and rule.get("name") else ""
        field = ".".join(map(str, location[2:])) or "rule"
        return f"{quality} rule {number + 1}{name}: {field}: {first['msg']}"
    return f"{'.'.join(map(str, location)) or 'file'}: {first['msg']}"


