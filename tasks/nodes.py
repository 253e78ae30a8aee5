"""What every node does: build its key, reuse the stored result, or generate it exactly once.

A task module describes its node (kind, provider, params, input digests) and how to
generate its outputs; `produce` does the rest, the same way for every kind.
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
from tasks import budget
from tasks.providers import registry
from tasks.providers.base import Modality, Provider, Usage

# "plan" and "publish", and the kinds of the video graph (tasks/graph.py).
NodeKind = str
# A placeholder stands in for a picture no provider could make; the next run asks again.
Status = Literal["generated", "cached", "placeholder"]

# A generator returns its outputs (name → bytes or a file it wrote, and a media type) and
# the usage the price table charges for.
Outputs = dict[str, tuple[bytes | Path, str]]
Generator = Callable[[Path], tuple[Outputs, Usage]]


class NodeError(RuntimeError):
    """A node could not be generated: which node, which provider, and why."""


class NodeOutcome(BaseModel):
    """A finished node as tasks pass it on: references to stored blobs, never their bytes."""

    id: str
    kind: NodeKind
    scene: str | None
    status: Status
    record: NodeRecord
    seconds: float
    fallbacks: list[str] = []  # why preferred providers did not serve this node

    @property
    def cost_usd(self) -> float:
        """What this run paid for the node."""
        return self.record.cost_usd if self.status == "generated" else 0.0

    @property
    def saved_usd(self) -> float:
        """What reusing it saved."""
        return self.record.cost_usd if self.status == "cached" else 0.0

    def output(self, name: str) -> Artifact:
        return self.record.outputs[name]


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
    return [registry.create(modality, spec, settings.provider_options.get(spec.split(":")[0]))
            for spec in getattr(settings, modality.value)]


Describe = Callable[[Provider], tuple[Node, Generator]]


def produce(settings: Settings, modality: Modality, describe: Describe) -> NodeOutcome:
    """A node served by the first provider in the chain that has it stored or can make it.

    Each provider's result is stored under its own key, so a fallback's result never hides
    the preferred provider: the next run asks the preferred one again.
    """
    chain = provider_chain(settings, modality)
    fallbacks = []
    for index, provider in enumerate(chain):
        node, generate = describe(provider)
        try:
            outcome = produce_node(settings, node, generate)
        except NodeError as error:
            if index == len(chain) - 1:
                raise
            fallbacks.append(str(error))
            continue
        return outcome.model_copy(update={"fallbacks": fallbacks})
    raise AssertionError("a provider chain is never empty")


def produce_node(settings: Settings, node: Node, generate: Generator) -> NodeOutcome:
    """The stored result of `node` if it verifies, else generate it (once across processes)."""
    store = open_store(settings.store)
    started = time.monotonic()
    key = node.key
    record = store.lookup(key)
    status: Status = "cached"
    if record is None:
        with store.node_lock(key):
            record = store.lookup(key)  # another run may have made it while we waited
            if record is None:
                record = _generate(settings, store, node, key, generate)
                status = "generated"
    return NodeOutcome(id=node.id, kind=node.kind, scene=node.scene, status=status,
                       record=record, seconds=round(time.monotonic() - started, 3))


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
              generate: Generator) -> NodeRecord:
    expected = expected_cost(settings, node)
    ledger = budget.ledger(settings.max_cost)
    ledger.reserve(node.id, expected)
    actual = 0.0
    try:
        started = time.monotonic()
        with store.work_dir() as workdir, provider_slot(settings, node.provider):
            try:
                outputs, usage = generate(workdir)
            except Exception as error:
                # The message reaches manifests, Prefect states and logs: never with a key in it.
                raise NodeError(redact(f"{node.id}: {node.provider}/{node.model} failed: "
                                       f"{error}")) from None
            artifacts = {
                name: store.put_file(value, media_type) if isinstance(value, Path)
                else store.put_bytes(value, media_type)
                for name, (value, media_type) in outputs.items()
            }
        used = {field: amount for field, amount in usage.model_dump().items() if amount}
        actual = cost_usd(node.provider, node.model, used, price_table(settings.prices))
        record = NodeRecord(
            key=key, kind=node.kind, provider=node.provider, model=node.model,
            parts=node.key_parts(), outputs=artifacts, usage=used, cost_usd=actual,
            seconds=round(time.monotonic() - started, 3),
        )
        store.record(record)
        return record
    finally:
        ledger.settle(expected, actual)


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
