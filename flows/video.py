"""The video flows: plan → the storyboard's graph (references, sprites, a voice per line, a
keyframe and a clip per scene, compose; see tasks/graph.py) → publish.

The flows only wire tasks together; every task stores its own output and comes back Cached
when the store already holds it. Tasks go through `.submit().result()`: a direct call would
hand back the Cached state itself rather than its data. Parameters are typed and titled:
Prefect turns them into the deployment's run form.
"""

from __future__ import annotations

import logging
from typing import Annotated

from prefect import flow
from prefect.exceptions import CancelledRun, TerminationSignal
from prefect.futures import as_completed
from prefect.states import Cancelled, State
from pydantic import Field
from slugify import slugify

from cache import open_store
from config.bible import cast_and_places
from config.settings import Settings
from flows import report
from flows.choices import StyleName
from flows.creative import Creative
from flows.options import RenderOptions
from flows.limits import limited, provider_tag
from tasks import budget, gates, progress, stopping
from tasks.graph import KINDS, make_node, video_graph
from tasks.history import History
from tasks.manifest import RenderSummary
from tasks.degraded import run_warnings
from tasks.plan import load_storyboard, plan_adjustments, plan_storyboard
from tasks.preflight import (check_budget, check_buckets, check_keys, check_providers,
                             check_voice)
from tasks.publish import publish_video
from tasks.storyboard import MAX_SCENES, Aspect, Storyboard, VideoRequest

# Prefect builds each deployment's run form from these types (enums become select boxes) and
# takes each field's help text from the flow docstring's Args section.


class RenderFailed(RuntimeError):
    """Nodes failed: each cause's message names its node, provider and reason; nodes that
    did not fail were stored, so a rerun makes only these (and what waits on them)."""

    def __init__(self, causes: list[BaseException]):
        self.causes = causes
        self.failures = [str(cause) or type(cause).__name__ for cause in causes]
        super().__init__(f"{len(causes)} nodes failed: " + "; ".join(self.failures))


def _make_run_name() -> str:
    from prefect.runtime import flow_run

    return "make-" + (slugify(flow_run.parameters.get("topic") or "", max_length=40) or "script")


@flow(name="make-video", flow_run_name=_make_run_name)
def make_video(
    topic: str | None = None,
    scenes: Annotated[int, Field(ge=1, le=MAX_SCENES)] = 6,
    aspect: Aspect = Aspect.portrait,
    style: StyleName = StyleName("documentary"),
    script: str | None = None,
    voice: str | None = None,
    language: str | None = None,
    music: bool = True,
    seed: Annotated[int, Field(ge=0)] = 0,
    cast: list[str] | None = None,
    places: list[str] | None = None,
    creative: Creative = Creative(),
    options: RenderOptions = RenderOptions(),
) -> RenderSummary:
    """Plan a storyboard for a topic or script, then render and publish the video.

    Args:
        topic: What the video is about.
        scenes: How many scenes (each a few seconds).
        aspect: Frame shape: 9:16 for shorts, 16:9 for landscape, 1:1 square.
        style: Visual style, from config/styles.yaml.
        script: Your own script instead of a topic: one scene per paragraph.
        voice: Narrator voice (an eSpeak voice such as en-us+f2; cloud voices are set in the
            profile). Empty: each speech provider's voice for the language.
        language: Narration language code, e.g. en, fr, ja. Empty: detected from the topic or
            script.
        music: Background music under the narration.
        seed: Change it for different pictures from the same storyboard.
        cast: Characters of a dialogue, by id (config/characters or REELFLOW_CHARACTERS).
        places: Locations the scenes take place in, by id (config/locations).
        creative: A director's look.
        options: Profile, output folder, size, bucket and cost limit (empty: the server's).
    """
    settings = run_settings(options)
    characters, locations = cast_and_places(settings, cast or [], places or [])
    request = VideoRequest(topic=topic, script=script, scenes=scenes, aspect=aspect,
                           style=StyleName(style).value, voice=voice, language=language,
                           music=music, seed=seed, characters=characters, locations=locations,
                           **creative.request_fields())
    with budget.run_ledger(settings.max_cost):
        planned = plan_storyboard.submit(request, settings).result()
        progress.emit(planned)
        return render(load_storyboard(planned, settings), settings, [planned])


def _render_run_name() -> str:
    from prefect.runtime import flow_run

    title = flow_run.parameters["storyboard"]
    title = title.title if isinstance(title, Storyboard) else title.get("title", "")
    return "render-" + (slugify(title, max_length=40) or "storyboard")


@flow(name="render-storyboard", flow_run_name=_render_run_name)
def render_storyboard(storyboard: Storyboard,
                      options: RenderOptions = RenderOptions()) -> RenderSummary:
    """Render and publish a storyboard; only nodes whose inputs changed are generated.

    Args:
        storyboard: The storyboard, as `reelflow plan` writes it.
        options: Profile, output folder, size, bucket and cost limit (empty: the server's).
    """
    settings = run_settings(options)
    with budget.run_ledger(settings.max_cost):
        return render(storyboard, settings, [])


def run_settings(options: RenderOptions) -> Settings:
    """A run's settings from its options (over environment, .env, profile), its providers,
    their keys and its buckets checked (the CLI and `reelflow serve` say the buckets' warnings
    when they start)."""
    settings = options.settings()
    check_providers(settings)
    check_buckets(settings.store, settings.publish)
    return settings


def render(storyboard: Storyboard, settings: Settings, upstream: list,
           history: History | None = None) -> RenderSummary | State:
    """The body of every video flow; call it inside a flow run. While it runs, `cache gc`
    waits: what it generates is kept only once its manifest is published. `history`: the
    video's, `storyboard` its current version (None: a new video).

    Ctrl-C, SIGTERM or a cancellation stops every provider call of this process and ends the
    run Cancelled (not Crashed), saying what was in flight: a rerun resumes it."""
    with open_store(settings.store).in_use():
        try:
            return _render(storyboard, settings, upstream, history)
        except (KeyboardInterrupt, TerminationSignal) as interruption:
            stopping.request(stopping.interruption_reason(interruption))
            logging.getLogger("prefect.flow_runs").addFilter(_expected_cancellation)
            return Cancelled(message=stopping.summary())


def _expected_cancellation(record: logging.LogRecord) -> bool:
    """Drop the engine's "unexpected exception" traceback for a run this process cancelled
    itself: the Cancelled state already says why, in one line."""
    error = record.exc_info[1] if record.exc_info else None
    return not (isinstance(error, CancelledRun) and stopping.requested())


def _render(storyboard: Storyboard, settings: Settings, upstream: list,
            history: History | None) -> RenderSummary:
    voice_warnings = check_voice(storyboard.voice, storyboard.language, settings)
    check_budget(storyboard, settings)
    makers = _node_tasks(settings)
    storyboard, history, recast, made_first = _recast(storyboard, settings, makers, history)
    report.storyboard_artifact(storyboard)
    progress.emit(storyboard)  # the CLI sizes its bars from the graph
    steps = video_graph(storyboard, sync_lips=settings.sync_lips)
    futures = _submit(steps, makers, storyboard, settings)
    finished = report.Progress([*(step.kind for step in steps), "publish"])
    kinds = {futures[step.id]: step.kind for step in steps}
    for future in as_completed(list(futures.values())):
        future.wait()  # its final state from the task itself: the server may not have it yet
        outcome = (future.result().paid_earlier(made_first) if future.state.is_completed()
                   else None)
        finished.advance(kinds[future], outcome)
        if outcome:  # said from here: tasks may run in other processes
            progress.emit(outcome)
    # Nodes that failed on their own; those that merely waited on one are not Failed.
    failures = [future.result(raise_on_failure=False) for future in futures.values()
                if future.state.is_failed()]
    if failures:
        raise RenderFailed(failures)
    outcomes = {node_id: future.result().paid_earlier(made_first)
                for node_id, future in futures.items()}
    composed = outcomes.pop("compose")
    made = [*upstream, *outcomes.values()]
    warnings = [*check_keys(settings), *voice_warnings, *recast, *run_warnings(made),
                *(line for outcome in upstream if outcome.kind == "plan"
                  for line in plan_adjustments(outcome.record, settings))]
    summary = publish_video.submit(storyboard, made, composed, settings, warnings,
                                   history).result()
    finished.advance("publish")
    report.summary_artifacts(summary, settings)
    return summary


def _submit(steps: list, makers: dict, storyboard: Storyboard, settings: Settings) -> dict:
    """A task per step, each after the nodes it needs (and waiting for those alone)."""
    futures = {}
    for step in steps:
        futures[step.id] = makers[step.kind].submit(
            step, {needed: futures[needed] for needed in step.needs}, storyboard, settings)
    return futures


def _recast(storyboard: Storyboard, settings: Settings, makers: dict,
            history: History | None) -> tuple[Storyboard, History | None, list[str],
                                              dict[str, float]]:
    """When most first keyframes of a character are unlike the reference sheet reelflow made
    for it, the sheet is the likelier fault: it is made again, once, before any scene is tried
    again (tasks/gates.py). The keyframes' first attempts are made here and reused after: what
    this pass generated is returned (key → cost), for the run to count as made, not reused."""
    if settings.max_attempts == 1 or not gates.suspects(storyboard):
        return storyboard, history, [], {}
    once = settings.model_copy(update={"max_attempts": 1})
    steps = [step for step in video_graph(storyboard) if step.kind in ("reference", "image")]
    futures = _submit(steps, makers, storyboard, once)
    reviews, made = {}, {}
    for future in as_completed(list(futures.values())):
        future.wait()
        outcome = future.result() if future.state.is_completed() else None
        if outcome is None:  # failed: it fails again, and says so, below
            continue
        made.update(outcome.paid())
        if outcome.kind == "image" and outcome.review:
            reviews[outcome.scene] = outcome.review
    members = gates.drifting(storyboard, reviews)
    if not members:
        return storyboard, history, [], made
    names = ", ".join(storyboard.character(member).name for member in members)
    note = f"a new reference of {names}: most of their shots drifted from the first"
    recast = gates.recast(storyboard, members)
    return recast, history and history.amended(recast, note), [note], made


def _node_tasks(settings: Settings) -> dict:
    """The node task of each kind, named after it, with its preferred provider's tag where
    the server limits that tag."""
    tags = {name: provider_tag(getattr(settings, kind.modality.value)[0])
            for name, kind in KINDS.items() if kind.modality}
    limited_tags = limited(set(tags.values()))
    return {name: make_node.with_options(
        name=name, tags={tags[name]} if tags.get(name) in limited_tags else set())
        for name in KINDS}
