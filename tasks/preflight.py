"""Checks before anything is spent: the provider settings name real providers, options and
prices, every configured provider has its key, and the storyboard's estimated cost (nodes
already stored count 0) fits --max-cost."""

from __future__ import annotations

from collections.abc import Collection, Iterable

from pydantic import BaseModel

from cache import open_bucket, open_store
from cache.buckets import BucketError, scheme_of
from cache.store import Artifact, ArtifactStore
from config.pricing import PriceError, cost_usd, price_table
from config.secrets import MissingSecretError
from config.settings import Settings
from tasks.budget import BudgetExceeded
from tasks import gates, router
from tasks.graph import KINDS, Step, Upstream, gated, preferred, step_settings, video_graph
from tasks.language import language
from tasks.nodes import Node, NodeOutcome, expected_cost, provider_chain
from tasks.providers import registry
from tasks.providers.base import Modality
from tasks.providers.registry import ProviderConfigError, UnknownProviderError
from tasks.plan import plan_node
from tasks.storyboard import Storyboard, VideoRequest


def check_providers(settings: Settings,
                    modalities: Iterable[Modality] = tuple(Modality)) -> list[str]:
    """Refuse provider settings that cannot be what the user meant, before anything runs; then
    check the keys of the chains of `modalities` (the ones the command will call).

    Raises ProviderConfigError, in one line naming the mistake and the valid choices, for a
    chain entry or a `provider_options`, `voices` or `provider_concurrency` key that names no
    registered provider, an option a provider does not have or a value it does not take, and a
    price table that cannot be read or does not price a chain's provider; MissingSecretError
    for a chain none of whose providers has its key. Returns check_keys' warnings.
    """
    chains = [provider for modality in Modality for provider in provider_chain(settings, modality)]
    chains += [provider for routed in router.check(settings)[1:]
               for provider in provider_chain(routed, Modality.video)]
    for name, options in settings.provider_options.items():
        registry.check_options(name, options)
    _check_names("voices", settings.voices, registry.names(Modality.speech))
    _check_names("provider_concurrency", settings.provider_concurrency, registry.names())
    try:
        table = price_table(settings.prices)
    except ValueError as error:
        raise ProviderConfigError(f"prices: {error}") from None
    for provider in chains:
        try:
            cost_usd(provider.name, provider.model, {}, table)
        except PriceError as error:
            raise ProviderConfigError(
                f"prices: {error} (price it in your REELFLOW_PRICES table, or mark a self-hosted "
                f"provider free: `{provider.name}: free`)") from None
    return check_keys(settings, modalities)


def _check_names(setting: str, given: Collection[str], known: list[str]) -> None:
    for name in given:
        if name not in known:
            raise UnknownProviderError(f"{setting}: no provider named {name!r} "
                                       f"(known: {', '.join(known)})")


def check_buckets(store: str, publish: str | None) -> list[str]:
    """Before anything is paid: the store's bucket and the publish bucket exist and this
    machine may use them (a BucketError naming which and what is missing); what a service does
    not do, as warnings."""
    warnings = []
    for what, location in (("store", store), ("publish", publish)):
        if location and scheme_of(location):
            try:
                bucket = open_store(location).bucket if what == "store" else open_bucket(location)
            except BucketError as error:
                raise BucketError(f"{what}: {error}") from None
            warnings += bucket.warnings
    return warnings


def check_keys(settings: Settings,
               modalities: Iterable[Modality] = tuple(Modality)) -> list[str]:
    """Every provider of the chains of `modalities` checked for its key or credentials: one
    warning per chain whose preferred provider cannot run (the next that can serves it), and
    MissingSecretError for a chain none of whose providers can."""
    warnings = []
    for modality in modalities:
        if modality is Modality.lipsync and not settings.sync_lips:
            continue  # never called: --no-lipsync
        chain = provider_chain(settings, modality)
        missing = [provider.unavailable() for provider in chain]
        runnable = [spec for spec, why in zip(getattr(settings, modality.value), missing)
                    if why is None]
        if not runnable:
            raise MissingSecretError(f"{modality.label}: " + "; ".join(missing))
        if missing[0] is not None:
            warnings.append(f"{modality.label}: {missing[0]}; {modality.label} will use "
                            f"{runnable[0]}")
    return warnings


class _NotMadeYet(dict):
    """The outputs of a node that is not stored: any output, with a digest no blob has."""

    def __missing__(self, name: str) -> Artifact:
        return Artifact(digest="0" * 64, media_type="", size=0)


class PlannedNode(BaseModel):
    """One node of a render as it would run now: made (at what cost) or taken from the store."""

    id: str
    kind: str
    scene: str | None
    stored: bool
    cost_usd: float  # 0 when stored


def route_cost(storyboard: Storyboard, settings: Settings) -> router.RouteCost | None:
    """With a quality set, every clip priced on its route and on the profile's first video
    provider (whatever the store holds)."""
    if settings.quality == "off":
        return None
    routed = unrouted = 0.0
    scenes: dict[str, int] = {}
    kind = KINDS["clip"]
    for step in video_graph(storyboard, sync_lips=settings.sync_lips):
        if step.kind != "clip":
            continue
        upstream = {needed: _NotMadeYet() for needed in step.needs}
        ran = step_settings(step, storyboard, settings)
        animator = preferred(ran, kind)
        routed += expected_cost(ran, kind.describe(step, storyboard, ran, animator, upstream)[0])
        unrouted += expected_cost(settings, kind.describe(
            step, storyboard, settings, preferred(settings, kind), upstream)[0])
        scenes[ran.video[0]] = scenes.get(ran.video[0], 0) + 1
    return router.RouteCost(quality=settings.quality, routed_usd=round(routed, 6),
                            unrouted_usd=round(unrouted, 6), unrouted=settings.video[0],
                            scenes=scenes)


class _NotStored(Exception):
    """A node the estimate needs is not in the store."""


def _stored(store: ArtifactStore, node: Node) -> NodeOutcome:
    record = store.lookup(node.key)
    if record is None:
        raise _NotStored(node.id)
    return NodeOutcome(id=node.id, kind=node.kind, scene=node.scene, status="cached",
                       record=record, seconds=0.0)


def _settled(step: Step, storyboard: Storyboard, settings: Settings,
             upstream: Upstream) -> dict[str, Artifact] | None:
    """A stored shot's outputs as its gate hands them on (the attempt it chose, as corrected),
    replayed from the store; None where an attempt or a gate it needs is not made yet."""
    kind = KINDS[step.kind]
    store = open_store(settings.store)
    embedder = provider_chain(settings, Modality.embedding)[0]
    try:
        return gates.gated(step, storyboard, settings, upstream, lambda attempt: _stored(
            store, kind.describe(attempt, storyboard, settings, preferred(settings, kind),
                                 upstream)[0]),
                           lambda attempt, shot: _stored(store, gates.describe(
                               attempt, storyboard, embedder, shot, upstream, settings)[0])
                           ).outputs
    except _NotStored:
        return None


class RenderPreview(BaseModel):
    """What rendering a storyboard would generate and reuse, and what it would cost, told
    without calling any provider (`--dry-run`). A node after one that is generated counts as
    generated: its inputs are not known until then."""

    nodes: list[PlannedNode]
    cost_usd: float
    # False for a plan not made yet: its scenes' nodes are known (and priced) once it is.
    complete: bool = True
    routing: router.RouteCost | None = None  # with a quality: what the router saves

    @classmethod
    def of_request(cls, request: VideoRequest, settings: Settings) -> RenderPreview:
        """The plan node, then the storyboard's nodes if the plan is stored."""
        node, _ = plan_node(request, provider_chain(settings, Modality.planner)[0])
        record = open_store(settings.store).lookup(node.key)
        planned = PlannedNode(id="plan", kind="plan", scene=None, stored=record is not None,
                              cost_usd=0.0 if record else round(expected_cost(settings, node), 6))
        if record is None:
            return cls(nodes=[planned], cost_usd=planned.cost_usd, complete=False)
        storyboard = Storyboard.model_validate_json(
            open_store(settings.store).read_bytes(record.outputs["storyboard"]))
        rest = cls.of(storyboard, settings)
        return cls(nodes=[planned, *rest.nodes], cost_usd=rest.cost_usd, routing=rest.routing)

    @classmethod
    def of(cls, storyboard: Storyboard, settings: Settings) -> RenderPreview:
        """The graph walked in order, each node looked up in the store by its key, and priced
        with its preferred provider where it is not there."""
        store = open_store(settings.store)
        made: dict[str, dict] = {}
        nodes = []
        for step in video_graph(storyboard, sync_lips=settings.sync_lips):
            kind = KINDS[step.kind]
            upstream = {needed: made[needed] for needed in step.needs}
            ran = step_settings(step, storyboard, settings)
            node, _ = kind.describe(step, storyboard, ran, preferred(ran, kind), upstream)
            known = all(not isinstance(outputs, _NotMadeYet) for outputs in upstream.values())
            record = store.lookup(node.key) if known else None
            outputs = None
            if record:
                outputs = _settled(step, storyboard, ran, upstream) if gated(step, storyboard) \
                    else record.outputs
            made[step.id] = _NotMadeYet() if outputs is None else outputs
            cost = expected_cost(ran, node) if outputs is None and kind.modality else 0.0
            nodes.append(PlannedNode(id=step.id, kind=step.kind, scene=step.scene,
                                     stored=outputs is not None, cost_usd=round(cost, 6)))
        return cls(nodes=nodes, cost_usd=round(sum(node.cost_usd for node in nodes), 6),
                   routing=route_cost(storyboard, settings))

    @property
    def generated(self) -> list[PlannedNode]:
        return [node for node in self.nodes if not node.stored]


def estimate_usd(storyboard: Storyboard, settings: Settings) -> float:
    """What rendering `storyboard` with the preferred providers would cost now."""
    return RenderPreview.of(storyboard, settings).cost_usd


def check_budget(storyboard: Storyboard, settings: Settings) -> None:
    if settings.max_cost is None:
        return
    estimate = estimate_usd(storyboard, settings)
    if estimate > settings.max_cost:
        raise BudgetExceeded(f"max-cost: this render is estimated at ${estimate:.4f}, over the "
                             f"limit of ${settings.max_cost:.4f}; nothing was generated")


class VoiceMismatch(ValueError):
    """A voice the user named speaks another language than the video's."""


def check_voice(voice: str | None, language_tag: str, settings: Settings) -> list[str]:
    """A voice the user named, checked against the language by the speech providers of the
    chain (through the settings' `voices` mapping): VoiceMismatch, naming both, where one knows
    the voice speaks another language; a warning where none can tell (a cloud voice id)."""
    if voice is None:
        return []
    told = []
    for synthesizer in provider_chain(settings, Modality.speech):
        speaks = synthesizer.speaks(settings.voices.get(synthesizer.name, {}).get(voice, voice),
                                    language_tag)
        if speaks is False:
            raise VoiceMismatch(
                f"voice: {voice!r} does not speak {language(language_tag).described}, the "
                f"language asked for ({synthesizer.name}); leave out the voice for one that does")
        told.append(speaks)
    if any(told):
        return []
    return [f"voice: cannot tell whether {voice!r} speaks {language(language_tag).described}; "
            "it is used as given"]
