"""The plan node: a video request becomes a storyboard."""

from __future__ import annotations

import json

from prefect import task
from prefect.cache_policies import NO_CACHE

from cache import open_store
from cache.store import NodeRecord
from config.settings import Settings
from tasks.nodes import Generator, Node, NodeOutcome, produce, reported
from tasks.providers.base import Modality, Planner, Usage
from tasks.storyboard import Storyboard, VideoRequest

# 2: planners write in the request's language; scripts are read as written.
# 3: each scene has an on-screen text (the prompt asks for it).
PLAN_VERSION = 3
# A language model's prompt and reply for one storyboard, roughly: the estimate --max-cost uses.
EXPECTED_TOKENS = 1500
EXPECTED_TOKENS_PER_SCENE = 150
# Request fields added since plans were first stored: left out of the key while unused, so a
# request that uses none of them keeps its stored plan.
LATER_FIELDS = ("director", "ad", "track")


def plan_node(request: VideoRequest, planner: Planner) -> tuple[Node, Generator]:
    node = Node.served_by(
        planner, id="plan", kind="plan", version=PLAN_VERSION,
        params={"request": request_params(request)}, inputs={},
        expected=Usage(tokens=EXPECTED_TOKENS + EXPECTED_TOKENS_PER_SCENE * request.drafted_scenes))

    def generate(workdir):
        result = planner.plan(request)
        # Kept with the plan, so a stored plan still says what was adjusted in it.
        return {"storyboard": (result.storyboard.model_dump_json(indent=2).encode(),
                               "application/json"),
                "adjustments": (json.dumps(result.adjustments).encode(),
                                "application/json")}, result.usage

    return node, generate


def request_params(request: VideoRequest) -> dict:
    unused = {name for name in LATER_FIELDS
              if getattr(request, name) == VideoRequest.model_fields[name].default}
    return request.model_dump(mode="json", exclude=unused)


def plan(request: VideoRequest, settings: Settings) -> NodeOutcome:
    return produce(settings, Modality.planner, lambda planner: plan_node(request, planner))


def load_storyboard(outcome: NodeOutcome, settings: Settings) -> Storyboard:
    data = open_store(settings.store).read_bytes(outcome.output("storyboard"))
    return Storyboard.model_validate_json(data)


def plan_adjustments(record: NodeRecord, settings: Settings) -> list[str]:
    """What the planner changed in the model's reply to fit the request (or could not do), one
    line each, for a stored plan (`outcome.record` of the plan node); plans stored before they
    kept it: none."""
    artifact = record.outputs.get("adjustments")
    if artifact is None:
        return []
    return json.loads(open_store(settings.store).read_bytes(artifact))


@task(name="plan", task_run_name="plan-storyboard", cache_policy=NO_CACHE)
def plan_storyboard(request: VideoRequest, settings: Settings) -> NodeOutcome:
    """Write the storyboard for a request."""
    return reported(plan(request, settings))
