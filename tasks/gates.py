"""The gate after every keyframe and clip: a shot is measured, never asked about.

- **Identity**: the shot (a keyframe, or frames sampled from a clip) and the references of the
  characters in its scene are embedded by the embedding chain's provider; a character's score is
  its best similarity to the shot. Under the provider's threshold, the shot fails.
- **Technical**: not a single colour; a clip shows no black stretch over 0.5 s and no frozen one
  over 1 s (ffmpeg's blackdetect and freezedetect). A picture smaller than asked (a provider
  returns what its model makes, never enlarged) is enlarged when it lacks at most a third of
  its size, and fails otherwise. Frame rate and length are held by tasks/checks.py before a
  shot is stored at all.
- **Look**: the shot's mean colour against its location's reference (tasks/look.py). One that
  drifted is graded back with ffmpeg (a correction, not a paid regeneration), and fails only
  when no allowed grade brings it within the threshold. A grade that would lower a
  character's likeness is left out: then the shot's colours are its cast's, not its light.

A corrected shot is an output of its gate, used in the shot's place downstream.

The gate is a node: its key is the shot's digest, the references' digests and the embedder, and
it stores the measures, so a rerun never pays for a check twice. The verdict is judged from the
measures on every run, so a changed threshold pays for nothing. A shot that fails is made again
as its next attempt (part of its key, so every attempt is paid once and kept), with a prompt
that says what was wrong, up to `max_attempts`; then the best attempt is used and flagged for a
person (`reelflow review`). A person's approval is kept by the shot's digest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import numpy
from PIL import Image, ImageStat
from pydantic import BaseModel

from cache import open_store
from config.settings import Settings
from tasks import look
from tasks.ffmpeg import INTERMEDIATE_VIDEO_ARGS, probe, run_ffmpeg, still
from tasks.nodes import Node, NodeError, NodeOutcome, produce, provider_chain
from tasks.providers import registry
from tasks.providers.base import EmbeddingRequest, ImageEmbedder, Modality, Usage
from tasks.review import Attempt, ShotReview, approval_key, approved
from tasks.storyboard import Storyboard

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

GATE_VERSION = 2  # 2: looks and sizes, corrected
BLACK_SECONDS = 0.5  # a longer black stretch fails a clip
FROZEN_SECONDS = 1.0  # a longer frozen stretch fails a clip
SAMPLED = (0.1, 0.5, 0.9)  # where a clip is looked at, as shares of its length
FLAT = 2.0  # a picture whose every channel varies less than this (0-255) is one colour
MAX_ENLARGEMENT = 1.5  # a picture smaller than asked is enlarged up to this, else made again
LIKENESS_SLACK = 0.05  # how much a grade may lower a character's similarity and be kept


class Correction(BaseModel):
    """What a gate did to a shot that was close: ffmpeg's work, not a paid regeneration."""

    enlarged: float = 1.0  # the factor a picture smaller than asked was enlarged by
    gains: look.Gains = look.UNGRADED  # per RGB channel, toward the location's colours
    after: float | None = None  # the look distance the grade left

    @property
    def needed(self) -> bool:
        return self.enlarged > 1.0 or self.gains != look.UNGRADED


class Measures(BaseModel):
    """What a gate node stores about one shot."""

    identity: dict[str, float] = {}  # character id → its best similarity to the shot
    problems: list[str] = []  # technical faults, in words
    look: float | None = None  # ΔE from the location's reference, as made
    correction: Correction | None = None
    look_kept: bool = False  # a grade was found but left out: it would change a likeness


Shoot = Callable[["Step"], NodeOutcome]
Gauge = Callable[["Step", NodeOutcome], NodeOutcome]


def gated(step: Step, storyboard: Storyboard, settings: Settings, upstream: Upstream,
          shoot: Shoot, gauge: Gauge | None = None) -> NodeOutcome:
    """The shot `shoot(step)` makes, gated: made again while it fails, up to `max_attempts`.
    `gauge(step, shot)` is the shot's gate node; by default the embedding chain's (the
    pre-flight estimate passes both as lookups in the store)."""
    def measured(attempt: Step, shot: NodeOutcome) -> NodeOutcome:
        return produce(settings, Modality.embedding, lambda embedder: describe(
            attempt, storyboard, embedder, shot, upstream, settings))

    gauge = gauge or measured
    store = open_store(settings.store)
    attempts: list[Attempt] = []
    outcomes: list[NodeOutcome] = []
    cost = saved = 0.0
    threshold = 0.0
    accepted = None  # the attempt a person approved
    for number in range(1, settings.max_attempts + 1):
        attempt_step = replace(step, attempt=number, correction=_correction(attempts))
        shot = shoot(attempt_step)
        if shot.status == "placeholder":  # no provider could make it: nothing to measure
            return shot
        digest = next(iter(shot.record.outputs.values())).digest
        try:
            gate = gauge(attempt_step, shot)
        except NodeError as error:  # unmeasured: flagged for a person, never paid for again
            attempts.append(Attempt(number=number, key=shot.record.key, digest=digest,
                                    gate_key="", identity={}, reasons=[f"not measured: {error}"]))
            outcomes.append(shot)
            cost += error.spent_usd
            break
        cost, saved = cost + gate.cost_usd, saved + gate.saved_usd
        threshold = _threshold(settings, gate)
        measures = Measures.model_validate_json(store.read_bytes(gate.output("report")))
        attempt = Attempt(number=number, key=shot.record.key, digest=digest,
                          gate_key=gate.record.key, identity=measures.identity,
                          reasons=judge(measures, threshold, storyboard), look=measures.look,
                          corrected=gate.record.outputs.get("corrected"))
        again = any(earlier.digest == digest for earlier in attempts)
        attempts.append(attempt)
        outcomes.append(shot)
        if attempt.reasons and approved(store, digest):
            accepted = attempt
        if not attempt.reasons or accepted or again:
            break  # passed, accepted by a person, or a provider that makes the same shot again
    chosen = accepted or min(attempts, key=_badness)
    for attempt, outcome in zip(attempts, outcomes):
        if attempt is not chosen:
            cost, saved = cost + outcome.cost_usd, saved + outcome.saved_usd
    review = ShotReview(threshold=threshold, attempts=attempts, chosen=chosen.number,
                        approval_key=approval_key(chosen.digest) if accepted else None,
                        cost_usd=round(cost, 6), saved_usd=round(saved, 6))
    return outcomes[chosen.number - 1].model_copy(update={"review": review})


def suspects(storyboard: Storyboard) -> list[str]:
    """Characters whose generated reference could be at fault for their shots' drift: in two
    scenes or more, drawn from a reference sheet reelflow made (a person's own pictures are the
    truth), not yet made again."""
    from tasks.references import user_pictures

    scenes = storyboard.ordered_scenes()
    return [character.id for character in storyboard.characters
            if character.reference_take == 1 and not user_pictures(character)
            and sum(character.id in scene.cast for scene in scenes) >= 2]


def drifting(storyboard: Storyboard, reviews: dict[str, ShotReview]) -> list[str]:
    """Of the suspects, those most of whose scenes' first keyframes (by scene id in `reviews`)
    are unlike them: failures that cluster on one character point at its reference."""
    found = []
    for member in suspects(storyboard):
        scenes = [scene.id for scene in storyboard.scenes if member in scene.cast]
        unlike = [scene for scene in scenes if scene in reviews and reviews[scene].attempts[0]
                  .identity.get(member, 1.0) < reviews[scene].threshold]
        if 2 * len(unlike) > len(scenes):
            found.append(member)
    return found


def recast(storyboard: Storyboard, members: list[str]) -> Storyboard:
    """The storyboard with a new reference take of each of `members`."""
    return storyboard.model_copy(update={"characters": [
        character.model_copy(update={"reference_take": character.reference_take + 1})
        if character.id in members else character for character in storyboard.characters]})


def judge(measures: Measures, threshold: float, storyboard: Storyboard) -> list[str]:
    """Why a shot fails, in words; none when it passes."""
    unlike = [f"{storyboard.character(member).name} looks unlike their reference (similarity "
              f"{score:.2f}, needs {threshold:.2f})"
              for member, score in measures.identity.items() if score < threshold]
    return [*measures.problems, *unlike]


def describe(step: Step, storyboard: Storyboard, embedder: ImageEmbedder, shot: NodeOutcome,
             upstream: Upstream, settings: Settings) -> tuple[Node, Callable]:
    """The gate node of a shot: its measures, from the shot's bytes and its cast's and
    location's references, and the shot corrected where it was close."""
    scene = storyboard.scene(step.scene)
    name, artifact = next(iter(shot.record.outputs.items()))
    asked = shot.record.parts["params"]
    references = {member: upstream[f"ref-{member}"]["image"].digest for member in scene.cast}
    place = upstream[f"ref-{scene.location}"]["image"].digest if scene.location else None
    # A camera move over a still keyframe that is asked to hold still is a still, not a freeze.
    still = asked.get("motion") == "static" and not _animates(shot)
    frozen = None if still else FROZEN_SECONDS
    looks = 1 if name == "image" else len(SAMPLED)
    params = {"shot": name, "black_seconds": BLACK_SECONDS, "frozen_seconds": frozen,
              "look_distance": look.LOOK_DISTANCE if place else None,
              "max_gain": look.MAX_GAIN, "max_enlargement": MAX_ENLARGEMENT}
    inputs = {"shot": artifact.digest, **{f"reference-{member}": digest
                                          for member, digest in references.items()}}
    if place:
        inputs["location"] = place
    node = Node.served_by(embedder, id=f"{step.id}-gate", kind="gate", version=GATE_VERSION,
                          scene=scene.id, params=params, inputs=inputs,
                          expected=Usage(images=(looks + len(references)) if references else 0))

    def measure(workdir: Path):
        store = open_store(settings.store)
        path = store.blob_path(artifact.digest)
        if name == "image":
            frames, problems = [path], []
        else:
            frames = _sample(path, workdir)
            problems = _motion_problems(path, frozen)
        if all(_one_colour(frame) for frame in frames):
            problems.append(f"the {'picture' if name == 'image' else 'clip'} is a single colour")
        correction = Correction()
        if name == "image":
            correction.enlarged, fault = _enlargement(path, asked["width"], asked["height"])
            problems += fault
        distance, kept = None, False
        if place:
            location = storyboard.subject(scene.location).name
            distance, gains, left, fault = _look(frames, store.blob_path(place), location)
            correction.gains, correction.after = gains, left
            problems += fault
        identity, usage = {}, Usage()
        if references:
            members = list(references)
            graded = ([_graded(frame, correction.gains, workdir) for frame in frames]
                      if correction.gains != look.UNGRADED else [])
            result = embedder.embed(EmbeddingRequest(images=[
                *frames, *graded, *(store.blob_path(references[member]) for member in members)]))
            pictures = len(frames) + len(graded)
            made, regraded = result.vectors[:len(frames)], result.vectors[len(frames):pictures]
            refs = result.vectors[pictures:]
            identity = _likeness(embedder, made, refs, members)
            if graded:
                after = _likeness(embedder, regraded, refs, members)
                if all(after[member] >= identity[member] - LIKENESS_SLACK for member in members):
                    identity = after
                else:  # its colours are its cast's, not its light: a grade would change them
                    correction.gains, correction.after, kept = look.UNGRADED, None, True
            usage = result.usage
        measures = Measures(identity=identity, problems=problems, look=distance,
                            correction=correction if correction.needed else None,
                            look_kept=kept)
        outputs = {"report": (measures.model_dump_json().encode(), "application/json")}
        if correction.needed:
            outputs["corrected"] = _corrected(path, name, asked, correction, workdir)
        return outputs, usage

    return node, measure


def _likeness(embedder: ImageEmbedder, shots: list, references: list,
              members: list[str]) -> dict[str, float]:
    """Each member's best similarity to any of the shot's frames."""
    return {member: round(max(embedder.similarity(vector, reference) for vector in shots), 4)
            for member, reference in zip(members, references)}


def _graded(frame: Path, gains: look.Gains, workdir: Path) -> Path:
    """A frame with `gains` applied, as the grade would make it."""
    target = workdir / f"graded-{frame.stem}.png"
    with Image.open(frame) as picture:
        rgb = numpy.asarray(picture.convert("RGB"), dtype=numpy.float64)
    Image.fromarray(look.graded(rgb, gains).astype(numpy.uint8)).save(target)
    return target


def _enlargement(picture: Path, width: int, height: int) -> tuple[float, list[str]]:
    """How much a picture must be enlarged to the asked size, and the fault when too much."""
    with Image.open(picture) as image:
        size = image.size
    factor = round(max(width / size[0], height / size[1]), 3)
    if factor <= MAX_ENLARGEMENT:
        return max(factor, 1.0), []
    return factor, [f"the picture is {size[0]}x{size[1]}, asked {width}x{height}: too small to "
                    f"enlarge ({factor:.1f}×, at most {MAX_ENLARGEMENT}×)"]


def _look(frames: list[Path], reference: Path,
          location: str) -> tuple[float, look.Gains, float | None, list[str]]:
    """The shot's distance from its location's look, the gains that bring it back (none when
    it is close) with the distance they leave, and the fault when no grade is enough."""
    shot = numpy.concatenate([look.pixels(frame) for frame in frames])
    place = look.pixels(reference)
    distance = round(look.distance(shot, place), 2)
    if distance <= look.LOOK_DISTANCE:
        return distance, look.UNGRADED, None, []
    gains, left = look.grade(shot, place)
    if left <= look.LOOK_DISTANCE:
        return distance, gains, round(left, 2), []
    return distance, look.UNGRADED, round(left, 2), [
        f"the colours are off {location}'s look (ΔE {distance:.0f} from its reference, at most "
        f"{look.LOOK_DISTANCE:.0f}; the strongest grade leaves {left:.0f})"]


def _corrected(shot: Path, name: str, asked: dict, correction: Correction,
               workdir: Path) -> tuple[Path, str]:
    """The shot enlarged to the asked size and graded, by ffmpeg."""
    filters = []
    if correction.enlarged > 1.0:
        filters.append(f"scale={asked['width']}:{asked['height']}:flags=lanczos")
    if correction.gains != look.UNGRADED:
        filters.append(look.mixer(correction.gains))
    if name == "image":
        target, args, media_type = workdir / "corrected.png", ["-frames:v", "1"], "image/png"
    else:
        target, args, media_type = workdir / "corrected.mp4", INTERMEDIATE_VIDEO_ARGS, "video/mp4"
    run_ffmpeg(["-i", str(shot), "-map", "0:v:0", "-vf", ",".join(filters), "-an", *args,
                str(target)], what=f"correct the {'picture' if name == 'image' else 'clip'}")
    return target, media_type


def _badness(attempt: Attempt) -> tuple:
    """Fewest faults first, then the closest likeness, then the earliest."""
    return (len(attempt.reasons), -min(attempt.identity.values(), default=1.0), attempt.number)


def _correction(attempts: list[Attempt]) -> str:
    """What the next attempt's prompt adds: what was wrong with the last one."""
    if not attempts:
        return ""
    return (f"Correction (attempt {len(attempts) + 1}): {'; '.join(attempts[-1].reasons)}. "
            "Keep every character exactly as in their reference picture.")


def _threshold(settings: Settings, gate: NodeOutcome) -> float:
    """The threshold of the embedder that measured the gate (a fallback has its own scale)."""
    for embedder in provider_chain(settings, Modality.embedding):
        if (embedder.name, embedder.model) == (gate.record.provider, gate.record.model):
            return embedder.options.threshold
    return provider_chain(settings, Modality.embedding)[0].options.threshold


def _animates(shot: NodeOutcome) -> bool:
    """Whether the clip's provider moves what the keyframe shows, not only the camera over it."""
    animators = [p for p in registry.named(shot.record.provider) if p.modality is Modality.video]
    return not animators or animators[0].animates


def _sample(clip: Path, workdir: Path) -> list[Path]:
    """Frames at SAMPLED shares of the clip, as PNGs."""
    length = probe(clip).duration
    return [still(clip, length * share, workdir / f"frame-{index}.png")
            for index, share in enumerate(SAMPLED)]


def _motion_problems(clip: Path, frozen: float | None) -> list[str]:
    """Black stretches over BLACK_SECONDS and frozen ones over `frozen` seconds."""
    filters = f"blackdetect=d={BLACK_SECONDS}:pix_th=0.10"
    if frozen is not None:
        filters += f",freezedetect=n=-60dB:d={frozen}"
    log = run_ffmpeg(["-i", str(clip), "-map", "0:v:0", "-vf", filters, "-f", "null", "-"],
                     what="look for black and frozen stretches", log="info")
    black = [(float(start), float(end)) for start, end in re.findall(
        r"black_start:\s*([\d.]+)\s+black_end:\s*([\d.]+)", log)]
    problems = [f"black for {end - start:.1f} s from {start:.1f} s" for start, end in black]
    starts = [float(start) for start in re.findall(r"freeze_start:\s*([\d.]+)", log)]
    ends = [float(end) for end in re.findall(r"freeze_end:\s*([\d.]+)", log)]
    length = probe(clip).duration
    for start, end in zip(starts, [*ends, length]):  # a freeze to the end reports no end
        if not any(black_start <= start and end <= black_end + 0.05
                   for black_start, black_end in black):  # black is still by nature
            problems.append(f"frozen for {end - start:.1f} s from {start:.1f} s")
    return problems


def _one_colour(frame: Path) -> bool:
    with Image.open(frame) as picture:
        return max(ImageStat.Stat(picture.convert("RGB")).stddev) < FLAT
