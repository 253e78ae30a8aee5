"""reelflow's deployments: the flows a person starts from the Prefect UI. `reelflow serve`
serves them; the CLI runs the same flows directly."""

from __future__ import annotations

from pathlib import Path

from prefect.deployments.runner import RunnerDeployment
from prefect.schedules import Cron
from prefect.task_runners import TaskRunner

from flows.batch import make_videos
from flows.rerun import rerun_with_edits
from flows.video import make_video, render_storyboard

WEEKLY_TOPICS = Path(__file__).parent / "topics" / "weekly.txt"
# An example: every Monday at 07:00 UTC, a video for each topic in topics/weekly.txt.
# Shipped paused; switch it on in the deployment's Schedules tab.
WEEKLY = Cron("0 7 * * 1", timezone="UTC", active=False,
              parameters={"topics_file": str(WEEKLY_TOPICS), "scenes": 4})


def deployments(runner: TaskRunner) -> list[RunnerDeployment]:
    def deploy(flow, name: str, **options) -> RunnerDeployment:
        return flow.with_options(task_runner=runner).to_deployment(
            name=name, tags=["reelflow"], **options)

    return [
        deploy(make_video, "make-video",
               description="Make a video from a topic (or your script) and publish it."),
        deploy(rerun_with_edits, "rerun-with-edits",
               description="Render a published video again with some scenes edited: only "
                           "those scenes are regenerated."),
        deploy(make_videos, "make-videos", schedules=[WEEKLY],
               description="Make one video per topic, a few at a time."),
        deploy(render_storyboard, "render-storyboard",
               description="Render a storyboard given as JSON."),
    ]
