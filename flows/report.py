"""What a render shows in the Prefect UI: progress while it runs, then the storyboard, a
table of every node (provider, status, cost, time) and a link to the published video."""

from __future__ import annotations

import json
import re

from prefect.artifacts import (
    create_link_artifact,
    create_markdown_artifact,
    create_progress_artifact,
    create_table_artifact,
    update_progress_artifact,
)

from pydantic import BaseModel

from config.settings import Settings
from flows.api.links import signed_video_url
from tasks.graph import KINDS
from tasks.manifest import RenderSummary
from tasks.nodes import NodeOutcome
from tasks.storyboard import Storyboard


SUMMARY = "Where the published video is"  # the description of a run's summary table


class Progress:
    """A progress artifact advanced as nodes finish. Its description says, per node kind, how
    many are done, how many of those were reused and what they cost: the Prefect UI shows it
    as it is, and the web page reads it back (`kinds_done`)."""

    def __init__(self, kinds: list[str]):
        self.kinds = {kind: KindProgress(kind=kind, label=_label(kind), total=kinds.count(kind))
                      for kind in dict.fromkeys(kinds)}
        self.id = create_progress_artifact(progress=0.0, description=self._described())

    def advance(self, kind: str, outcome: NodeOutcome | None = None) -> None:
        """One node of `kind` is over: `outcome` when it was made or reused."""
        done = self.kinds[kind]
        done.done += 1
        if outcome is not None:
            done.reused += outcome.status == "cached"
            done.cost_usd = round(done.cost_usd + outcome.cost_usd, 6)
        finished = sum(k.done for k in self.kinds.values())
        total = sum(k.total for k in self.kinds.values())
        update_progress_artifact(self.id, progress=round(100 * finished / total, 1),
                                 description=self._described())

    def _described(self) -> str:
        return PROGRESS_TITLE + "; ".join(
            f"{k.label} {k.done}/{k.total}, {k.reused} reused, ${k.cost_usd:.4f}"
            for k in self.kinds.values())


class KindProgress(BaseModel):
    kind: str
    label: str
    total: int
    done: int = 0
    reused: int = 0
    cost_usd: float = 0.0


PROGRESS_TITLE = "Nodes finished: "
_KIND_DONE = re.compile(r"(?P<label>[\w -]+?) (?P<done>\d+)/(?P<total>\d+), (?P<reused>\d+) "
                        r"reused, \$(?P<cost>\d+(?:\.\d+)?)")


def kinds_done(description: str | None) -> list[KindProgress]:
    """What a progress artifact's description says of each node kind."""
    if not description or not description.startswith(PROGRESS_TITLE):
        return []
    labels = {_label(kind): kind for kind in [*KINDS, "publish"]}
    found = []
    for part in description[len(PROGRESS_TITLE):].split("; "):
        match = _KIND_DONE.fullmatch(part)
        if match and match["label"] in labels:
            found.append(KindProgress(kind=labels[match["label"]], label=match["label"],
                                      total=int(match["total"]), done=int(match["done"]),
                                      reused=int(match["reused"]), cost_usd=float(match["cost"])))
    return found


def _label(kind: str) -> str:
    return KINDS[kind].label if kind in KINDS else kind


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
