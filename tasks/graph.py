"""The video's node graph, declared once: the flow runs it, the pre-flight estimate prices it
and the progress display counts it.

A node kind is a module with a `describe` function (a node and how to generate it, from the
digests of its upstream outputs: no I/O) and one `Kind` line below. `video_graph` lists a
storyboard's nodes in an order where every node comes after the nodes it needs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from prefect import task
from prefect.cache_policies import NO_CACHE
from prefect.states import Cancelled, State

from cache.store import Artifact
from config.settings import Settings
from tasks import (
    checks,
    clips,
    compose,
    gates,
    images,
    lipsync,
    references,
    router,
    soundtrack,
    speech,
    sprites,
)
from tasks.nodes import (
    Check,
    Generator,
    Node,
    NodeError,
    NodeOutcome,
    produce,
    produce_node,
    provider_chain,
    reported,
    stand_in,
)
from tasks.providers.base import Modality, Provider
from tasks.stopping import Stopped
from tasks.storyboard import PRODUCT_ID, Storyboard

# Upstream outputs by node id, then by output name.
Upstream = Mapping[str, Mapping[str, Artifact]]
DescribeStep = Callable[["Step", Storyboard, Settings, Provider | None, Upstream],
                    tuple[Node, Generator]]


@dataclass(frozen=True)
class Kind:
    name: str
    label: str  # what the progress display calls these nodes
    modality: Modality | None  # whose provider chain serves it; None: reelflow's own work
    describe: DescribeStep
    # What its outputs must be before they are stored (tasks/checks.py); `cache verify
    # --media` checks stored ones again.
    check: Check | None = None
    # A picture to stand in when every provider of the chain failed: the run goes on.
    placeholder: bool = False
    # A shot: measured by a gate and made again while it fails (tasks/gates.py).
    gated: bool = False


KINDS = {kind.name: kind for kind in [
    Kind("reference", "references", Modality.image, references.describe, checks.picture,
         placeholder=True),
    Kind("sprite", "sprites", None, sprites.describe),
    Kind("track", "track", None, soundtrack.describe),
    Kind("tts", "voices", Modality.speech, speech.describe, checks.speech),
    Kind("image", "keyframes", Modality.image, images.describe, checks.picture,
         placeholder=True, gated=True),
    Kind("clip", "clips", Modality.video, clips.describe, checks.clip, gated=True),
    Kind("lipsync", "lip-sync", Modality.lipsync, lipsync.describe, lipsync.check),
    Kind("segment", "segments", None, compose.describe_segment),
    Kind("compose", "compose", None, compose.describe),
]}


@dataclass(frozen=True)
class Step:
    """One node of a storyboard's graph: what it is of and which nodes it needs."""

    id: str
    kind: str
    scene: str | None = None
    subject: str | None = None  # a character or location id, or a line's index
    needs: tuple[str, ...] = ()
    # A shot made again after its gate failed: which attempt, and what the prompt adds.
    attempt: int = 1
    correction: str = ""


def video_graph(storyboard: Storyboard, *, sync_lips: bool = True) -> list[Step]:
    """Every node of `storyboard`, each after the nodes it needs (the lips of who speaks or
    sings on screen synced unless `sync_lips` is False)."""
    scenes = storyboard.ordered_scenes()
    on_stage = _unique(member for scene in scenes for member in scene.cast)
    places = _unique(scene.location for scene in scenes if scene.location)
    shown = [PRODUCT_ID] if any(scene.product for scene in scenes) else []
    steps = [Step(f"ref-{subject}", "reference", subject=subject) for subject in
             [*on_stage, *shown, *places]]
    for member in on_stage:
        drawn = bool(storyboard.character(member).sprites)
        steps.append(Step(f"sprite-{member}", "sprite", subject=member,
                          needs=() if drawn else (f"ref-{member}",)))
    lines = [Step(speech.line_id(scene, number), "tts", scene.id, str(number))
             for scene in scenes for number in range(1, len(scene.lines) + 1)]
    def drawn_from(scene):  # a shot is drawn from these, and its gate compares it with them
        return tuple(f"ref-{subject.id}" for subject in storyboard.drawn_from(scene))

    keyframes = [Step(f"{scene.id}-image", "image", scene.id, needs=drawn_from(scene))
                 for scene in scenes]
    motion = [Step(f"{scene.id}-clip", "clip", scene.id,
                   needs=(f"{scene.id}-image", *drawn_from(scene))) for scene in scenes]
    track = [Step("track", "track")] if storyboard.track else []
    synced = [Step(lipsync.lipsync_id(scene), "lipsync", scene.id, needs=(
        f"{scene.id}-clip", *lipsync.audio_needs(scene, storyboard)))
        for scene in scenes if sync_lips and scene.lipsync and storyboard.voiced(scene)]
    # A segment needs its scenes and the one before it (whose tail fades into its first).
    segments, before = [], None
    for group in compose.segments(storyboard):
        read = {scene.id for scene in ([before, *group] if before else group)}
        segments.append(Step(compose.segment_id(group[0]), "segment", group[0].id, needs=(
            *(line.id for line in lines if line.scene in read),
            *(step.id for step in [*motion, *synced] if step.scene in read),
            *_unique(f"sprite-{member}" for scene in scenes if scene.id in read
                     for member in scene.cast))))
        before = group[-1]
    composed = Step("compose", "compose", needs=(
        *(step.id for step in lines), *(step.id for step in segments),
        *(step.id for step in track)))
    return [*steps, *track, *lines, *keyframes, *motion, *synced, *segments, composed]


# The one video provider that keeps set text as it is: an end card's clip is a still of it.
STILL = "kenburns"


def step_settings(step: Step, storyboard: Storyboard, settings: Settings) -> Settings:
    """The settings a step runs with: a clip's video chain is its scene's route (an end
    card's, a still)."""
    if step.kind != "clip":
        return settings
    if _end_card(step, storyboard):
        return settings.model_copy(update={"video": [STILL]})
    return router.routed(storyboard.scene(step.scene), settings)


def _end_card(step: Step, storyboard: Storyboard) -> bool:
    return step.scene is not None and storyboard.end_card(storyboard.scene(step.scene))


def gated(step: Step, storyboard: Storyboard) -> bool:
    """Whether a step's shot is measured by a gate: not an end card's, set by reelflow."""
    return KINDS[step.kind].gated and not _end_card(step, storyboard)


def preferred(settings: Settings, kind: Kind) -> Provider | None:
    """The provider a kind's nodes go to first (None for reelflow's own work)."""
    return provider_chain(settings, kind.modality)[0] if kind.modality else None


def run_step(step: Step, upstream: dict[str, NodeOutcome], storyboard: Storyboard,
             settings: Settings) -> NodeOutcome:
    """The node of `step`: stored, or made by the first provider of its chain that can; for a
    picture no provider could make, a placeholder; for a shot, the best of its attempts at
    passing its gate."""
    kind = KINDS[step.kind]
    settings = step_settings(step, storyboard, settings)
    outputs = {node_id: outcome.outputs for node_id, outcome in upstream.items()}
    if gated(step, storyboard):
        return gates.gated(step, storyboard, settings, outputs, lambda attempt: _made(
            kind, attempt, storyboard, settings, outputs))
    return _made(kind, step, storyboard, settings, outputs)


def _made(kind: Kind, step: Step, storyboard: Storyboard, settings: Settings,
          outputs: Upstream) -> NodeOutcome:
    def described(provider):
        return kind.describe(step, storyboard, settings, provider, outputs)

    if kind.modality is None:
        return produce_node(settings, *described(None), kind.check)
    try:
        return produce(settings, kind.modality, described, kind.check)
    except NodeError as error:
        if not kind.placeholder:
            raise
        return stand_in(settings, described(preferred(settings, kind))[0], error)


@task(name="node", task_run_name="{step.id}", cache_policy=NO_CACHE)
def make_node(step: Step, upstream: dict[str, NodeOutcome], storyboard: Storyboard,
              settings: Settings) -> NodeOutcome | State:
    """Make one node of the video, or reuse it from the store."""
    try:
        return reported(run_step(step, upstream, storyboard, settings))
    except Stopped as stopped:  # the run is stopping: not a failure to log with a traceback
        return Cancelled(message=str(stopped))


def _unique(values) -> list:
    return list(dict.fromkeys(values))
