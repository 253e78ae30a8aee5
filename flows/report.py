"""What a render shows in the Prefect UI: progress while it runs, then the storyboard, a
table of every node (provider, status, cost, time) and a link to the published video."""

from __future__ import annotations

import json

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from config.settings import Settings
from flows.api.links import signed_video_url
from tasks.manifest import RenderSummary
from tasks.storyboard import Storyboard


SUMMARY = "Where the published video is"  # the description of a run's summary table


class Progress:
    """A progress artifact advanced as nodes finish."""

    def __init__(self, total: int):
        self.total, self.done = total, 0
        self.id = create_progress_artifact(progress=0.0, description="Nodes finished")

    def advance(self) -> None:
        self.done += 1
        update_progress_artifact(self.id, progress=round(100 * self.done / self.total, 1))


def storyboard_artifact(storyboard: Storyboard) -> None:
    text = storyboard.model_dump_json(indent=2)
    fence = "````" if "```" in text else "```"
    create_markdown_artifact(
        markdown=f"# Storyboard\n\nEdit the scenes and start *rerun-with-edits* (or "
                 f"`reelflow render` the published storyboard.json).\n\n{fence}json\n{text}\n{fence}\n",
        description="The storyboard this run renders")


def summary_artifacts(summary: RenderSummary, settings: Settings) -> None:
    manifest = json.loads(summary.manifest.read_text())
    rows = ["| node | provider | status | cost $ | seconds |", "|---|---|---|---|---|"]
    for node in manifest["nodes"]:
        served = node["provider"] + (" (fallback)" if node.get("fallbacks") else "")
        rows.append(f"| {node['id']} | {_cell(served)} | {node['status']} | "
                    f"{node['cost_usd'] + node['saved_usd']:.4f} | {node['seconds']:.1f} |")
    full = manifest["cost_usd"] + manifest["saved_usd"]
    warnings = [f"- ⚠ {_cell(warning)}" for warning in manifest.get("warnings", [])]
    create_markdown_artifact(
        markdown="\n".join([
            f"# {_cell(manifest['title'])}", "",
            f"**{manifest['generated']} generated, {manifest['cached']} reused.** "
            f"Paid ${manifest['cost_usd']:.4f}; reuse saved ${manifest['saved_usd']:.4f}; "
            f"a full rerun would have cost ${full:.4f}.", "", *warnings,
            *([""] if warnings else []), *rows]),
        description="What this run generated, reused and paid")
    if summary.review:
        create_table_artifact(table=[{**row, "identity": json.dumps(row["identity"]),
                                      "reasons": "; ".join(row["reasons"])}
                                     for row in summary.review],
                              description="Shots to review: still failing their gate after "
                                          "their attempts (`reelflow review`)")
    create_link_artifact(link=summary.url or _api_link(settings) or summary.video.resolve().as_uri(),
                         link_text=f"{manifest['title']}: video", description="The published video")
    # The one table of a run: where its video is, for the HTTP API (flows/api/jobs.py).
    create_table_artifact(table=[{
        "video": str(summary.video.resolve()), "storyboard": str(summary.storyboard.resolve()),
        "manifest": str(summary.manifest.resolve()), "url": summary.url,
        **summary.model_dump(include={"generated", "cached", "cost_usd", "saved_usd"})}],
        description=SUMMARY)


def _api_link(settings: Settings) -> str | None:
    """The video's address in the HTTP API when it runs this flow (`reelflow api` tells its
    runs its address and URL secret): a browser opens it from the UI, a file:// link not."""
    from prefect.runtime import flow_run

    if not (settings.api_public_url and settings.api_url_secret and flow_run.id):
        return None
    return signed_video_url(settings.api_public_url, settings.api_url_secret.get_secret_value(),
                            flow_run.id)


def _cell(text: str) -> str:
    """User text in a markdown table cell: no pipes, no line breaks, no markup."""
    return "".join("\\" + char if char in "|*_`[]<>#\\" else char
                   for char in text.replace("\n", " "))
