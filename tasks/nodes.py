"""What every node does: build its key, reuse the stored result, or generate it exactly once.

A task module describes its node (kind, provider, params, input digests) and how to
generate its outputs; `produce` does the rest, the same way for every kind: the budget is
reserved, the outputs are checked against the node's params before they are stored (a broken
one is asked for again and still paid for), the provider's long jobs are recorded for a rerun
to resume (tasks/jobs.py), and nothing starts once the run is stopping (tasks/stopping.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from prefect.states import Completed, State
from pydantic import BaseModel

from cache import open_store
from cache.keys import node_key, node_key_parts
from cache.store import Artifact, ArtifactStore, NodeRecord
from config.pricing import cost_usd, price_table
from config.secrets import redact
from config.settings import Settings
from tasks import budget, jobs, stopping
from tasks.providers import billing, registry
from tasks.providers.base import BrokenOutput, Modality, Provider, Usage
from tasks.review import ShotReview
from tasks.stopping import Stopped

# "plan" and "publish", and the kinds of the video graph (tasks/graph.py).
NodeKind = str
# A placeholder stands in for a picture no provider could make; the next run asks again.
Status = Literal["generated", "cached", "placeholder"]

# A generator returns its outputs (name → bytes or a file it wrote, and a media type) and
# the usage the price table charges for.
Outputs = dict[str, tuple[bytes | Path, str]]
Generator = Callable[[Path], tuple[Outputs, Usage]]


class NodeError(RuntimeError):
    """A node could not be generated: which node, which provider, and why; `spent_usd` is what
    the provider billed for replies that could not be used."""

    def __init__(self, message: str, spent_usd: float = 0.0):
        super().__init__(message)
        self.spent_usd = spent_usd


class NodeOutcome(BaseModel):
    """A finished node as tasks pass it on: references to stored blobs, never their bytes."""

    id: str
    kind: NodeKind
    scene: str | None
    status: Status
    record: NodeRecord
    seconds: float
    fallbacks: list[str] = []  # why preferred providers did not serve this node
    rejected_usd: float = 0.0  # billed for replies that failed their checks, by any provider
    review: ShotReview | None = None  # a shot's gate over its attempts (tasks/gates.py)

    @property
    def cost_usd(self) -> float:
        """What this run paid for the node, unusable replies, other attempts and gates
        included."""
        made = self.record.cost_usd if self.status == "generated" else 0.0
        return round(made + self.rejected_usd + (self.review.cost_usd if self.review else 0), 6)

    @property
    def saved_usd(self) -> float:
        """What reusing it (and its other attempts and gates) saved."""
        reused = self.record.cost_usd if self.status == "cached" else 0.0
        return round(reused + (self.review.saved_usd if self.review else 0), 6)

    @property
    def outputs(self) -> dict[str, Artifact]:
        """What the node hands on: its outputs, a shot's as its gate corrected it."""
        corrected = self.review.used.corrected if self.review else None
        if corrected is None:
            return self.record.outputs
        return {name: corrected for name in self.record.outputs}  # a shot has one output

    def output(self, name: str) -> Artifact:
        return self.outputs[name]

    def paid(self) -> dict[str, float]:
        """The nodes this outcome generated, by key, with what each cost (its gates' cost under
        their keys)."""
        made = {self.record.key: self.record.cost_usd} if self.status == "generated" else {}
        if self.review and self.review.cost_usd:
            made.update({attempt.gate_key: self.review.cost_usd
                         for attempt in self.review.attempts if attempt.gate_key})
        return made

    def paid_earlier(self, made: dict[str, float]) -> NodeOutcome:
        """This outcome, with the nodes an earlier pass of the same run generated (`made`:
        key → cost) counted as generated and paid, not reused."""
        update = {}
        if self.status == "cached" and self.record.key in made:
            update["status"] = "generated"
        if self.review:
            keys = {key for attempt in self.review.attempts
                    for key in (attempt.key, attempt.gate_key) if key != self.record.key}
            moved = sum(made.get(key, 0.0) for key in keys)
            if moved:
                update["review"] = self.review.model_copy(update={
                    "cost_usd": round(self.review.cost_usd + moved, 6),
                    "saved_usd": round(max(0.0, self.review.saved_usd - moved), 6)})
        return self.model_copy(update=update) if update else self


@dataclass(frozen=True)
class Node:
    """One unit of work and everything its output depends on."""

    id: str
    kind: NodeKind
    version: int  # bump when this node's own code would produce different output
    provider: str
    provider_version: int
    model: str
    params: dict
    inputs: dict[str, str]  # name → content digest of an upstream output
    scene: str | None = None
    expected: Usage = field(default_factory=Usage)  # what generating it uses: estimates, --max-cost

    @classmethod
    def served_by(cls, provider: Provider, **fields) -> Node:
        params = {**provider.params(), **fields.pop("params")}
        return cls(provider=provider.name, provider_version=provider.version,
                   model=provider.model, params=params, **fields)

    def key_parts(self) -> dict:
        return node_key_parts(kind=self.kind, version=self.version, provider=self.provider,
                              provider_version=self.provider_version, model=self.model,
                              params=self.params, inputs=self.inputs)

    @property
    def key(self) -> str:
        return node_key(**self.key_parts())


def provider_chain(settings: Settings, modality: Modality) -> list[Provider]:
    """The providers configured for `modality`, preferred first."""
    return [registry.create(modality, spec, registry.options_of(settings.provider_options,
                                                                modality, spec.split(":")[0]))
            for spec in getattr(settings, modality.value)]


Describe = Callable[[Provider], tuple[Node, Generator]]
# Raises BrokenOutput when generated outputs are not what the node's params asked for.
Check = Callable[[dict, dict[str, bytes | Path]], None]


def produce(settings: Settings, modality: Modality, describe: Describe,
            check: Check | None = None) -> NodeOutcome:
    """A node served by the first provider in the chain that has it stored or can make it.

    Each provider's result is stored under its own key, so a fallback's result never hides
    the preferred provider: the next run asks the preferred one again.
    """
    chain = provider_chain(settings, modality)
    fallbacks, spent = [], 0.0
    for index, provider in enumerate(chain):
        node, generate = describe(provider)
        try:
            outcome = produce_node(settings, node, generate, check,
                                   attempts=provider.options.attempts)
        except NodeError as error:
            spent += error.spent_usd
            if index == len(chain) - 1:
                raise NodeError(str(error), spent) from None
            fallbacks.append(str(error))
            continue
        return outcome.model_copy(update={
            "fallbacks": fallbacks, "rejected_usd": round(outcome.rejected_usd + spent, 6)})
    raise AssertionError("a provider chain is never empty")


def produce_node(settings: Settings, node: Node, generate: Generator, check: Check | None = None,
                 attempts: int = 1) -> NodeOutcome:
    """The stored result of `node` if it verifies, else generate it (once across processes):
    up to `attempts` times while what it makes fails `check`."""
    store = open_store(settings.store)
    started = time.monotonic()
    key = node.key
    record = store.lookup(key)
    status: Status = "cached"
    rejected = 0.0
    if record is None:
        with store.node_lock(key, settings.lease_seconds):
            record = store.lookup(key)  # another run may have made it while we waited
            if record is None:
                record, rejected = _generate(settings, store, node, key, generate, check,
                                             attempts)
                status = "generated"
    return NodeOutcome(id=node.id, kind=node.kind, scene=node.scene, status=status,
                       record=record, seconds=round(time.monotonic() - started, 3),
                       rejected_usd=rejected)


def stand_in(settings: Settings, node: Node, error: NodeError) -> NodeOutcome:
    """A placeholder picture for `node`, stored as a blob but never under the node's key."""
    from tasks.pictures import placeholder

    artifact = open_store(settings.store).put_bytes(
        placeholder(node.params["width"], node.params["height"]), "image/png")
    record = NodeRecord(key=node.key, kind=node.kind, provider="reelflow", model="placeholder",
                        parts=node.key_parts(), outputs={"image": artifact})
    return NodeOutcome(id=node.id, kind=node.kind, scene=node.scene, status="placeholder",
                       record=record, seconds=0.0, fallbacks=[str(error)])


def expected_cost(settings: Settings, node: Node) -> float:
    """What generating `node` should cost; an unpriced provider fails here, before paying."""
    usage = {name: amount for name, amount in node.expected.model_dump().items() if amount}
    return cost_usd(node.provider, node.model, usage, price_table(settings.prices))


def _generate(settings: Settings, store: ArtifactStore, node: Node, key: str,
              generate: Generator, check: Check | None, attempts: int) -> tuple[NodeRecord, float]:
    """The node made, checked and stored, and what its rejected replies cost."""
    prices = price_table(settings.prices)
    ledger = budget.ledger(settings.max_cost)
    rejected = 0.0  # billed for replies that were not used, over every attempt
    for attempt in range(1, attempts + 1):
        expected = expected_cost(settings, node)
        ledger.reserve(node.id, expected)
        made = 0.0
        with billing.metered() as dropped:
            try:
                started = time.monotonic()
                with store.work_dir() as workdir, provider_slot(settings, node.provider), \
                        stopping.working(node.id, node.provider), \
                        jobs.kept(store, key, node.provider):
                    outputs, usage = _checked(generate, workdir, node, check)
                    artifacts = {
                        name: store.put_file(value, media_type) if isinstance(value, Path)
                        else store.put_bytes(value, media_type)
                        for name, (value, media_type) in outputs.items()
                    }
            except BrokenOutput as error:
                billing.charge(error)
                store.forget_job(key)  # its result is broken: a retry submits anew
                spent = rejected + _cost(node, dropped, prices)
                if attempt < attempts:
                    rejected = spent
                    continue  # the finally below settles what it cost
                raise NodeError(redact(f"{node.id}: {node.provider}/{node.model} failed: "
                                       f"{error} ({attempts} attempts)"), spent) from None
            except Stopped:
                raise
            except Exception as error:
                # The message reaches manifests, Prefect states and logs: never with a key.
                raise NodeError(redact(f"{node.id}: {node.provider}/{node.model} failed: "
                                       f"{error}"), rejected + _cost(node, dropped, prices)) \
                    from None
            else:
                used = {field: amount for field, amount in usage.model_dump().items() if amount}
                made = cost_usd(node.provider, node.model, used, prices)
                record = NodeRecord(
                    key=key, kind=node.kind, provider=node.provider, model=node.model,
                    parts=node.key_parts(), outputs=artifacts, usage=used, cost_usd=made,
                    seconds=round(time.monotonic() - started, 3),
                )
                store.record(record)
                store.forget_job(key)
                return record, round(rejected + _cost(node, dropped, prices), 6)
            finally:
                ledger.settle(expected, made + _cost(node, dropped, prices))
    raise AssertionError("attempts is at least 1")


def _checked(generate: Generator, workdir: Path, node: Node,
             check: Check | None) -> tuple[Outputs, Usage]:
    """Generate, then check the outputs against the node's params; a broken output carries
    what the provider billed for it."""
    outputs, usage = generate(workdir)
    if check is not None:
        try:
            check(node.params, {name: value for name, (value, _) in outputs.items()})
        except BrokenOutput as error:
            raise BrokenOutput(str(error), usage) from None
    return outputs, usage


def _cost(node: Node, usages: list[Usage], prices: dict) -> float:
    """What `usages` of the node's provider cost."""
    total = 0.0
    for usage in usages:
        used = {field: amount for field, amount in usage.model_dump().items() if amount}
        total += cost_usd(node.provider, node.model, used, prices)
    return round(total, 6)


_slots: dict[tuple[str, int], threading.BoundedSemaphore] = {}
_slots_lock = threading.Lock()


def provider_slot(settings: Settings, provider: str) -> threading.BoundedSemaphore:
    """At most `provider_concurrency[provider]` calls at once in this process; Prefect's tag
    limits (`provider:<name>`) bound them across processes."""
    limit = settings.provider_concurrency.get(provider, settings.default_concurrency)
    with _slots_lock:  # one semaphore per provider and limit: runs with other settings differ
        return _slots.setdefault((provider, limit), threading.BoundedSemaphore(limit))


def reported(outcome: NodeOutcome) -> State | NodeOutcome:
    """The Prefect state for a node: a verified store hit shows as Cached in the UI."""
    if outcome.status == "cached":
        return Completed(name="Cached", message="reused from the artifact store", data=outcome)
    return outcome
