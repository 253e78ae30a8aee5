"""The plan node: a video request becomes a storyboard."""

from __future__ import annotations

from prefect import task
from prefect.cache_policies import NO_CACHE

from config.settings import Settings
from tasks.nodes import Node, NodeOutcome, open_store, produce, provider_for, reported
from tasks.providers.base import Modality
from tasks.storyboard import Storyboard, VideoRequest

PLAN_VERSION = 1


def plan(request: VideoRequest, settings: Settings) -> NodeOutcome:
    planner = provider_for(settings, Modality.planner)
    node = Node.served_by(planner, id="plan", kind="plan", version=PLAN_VERSION,
                          params={"request": request.model_dump(mode="json")}, inputs={})

    def generate(workdir):
        result = planner.plan(request)
        return {"storyboard": (result.storyboard.model_dump_json(indent=2).encode(),
                               "application/json")}, result.usage

    return produce(settings, node, generate)


def load_storyboard(outcome: NodeOutcome, settings: Settings) -> Storyboard:
    data = open_store(settings.store).read_bytes(outcome.output("storyboard"))
    return Storyboard.model_validate_json(data)


@task(name="plan", task_run_name="plan-storyboard", cache_policy=NO_CACHE)
def plan_storyboard(request: VideoRequest, settings: Settings) -> NodeOutcome:
    """Write the storyboard for a request."""
    return reported(plan(request, settings))
