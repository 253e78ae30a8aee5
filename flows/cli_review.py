"""`reelflow review VIDEO`: the shots of a published video still failing their gate after their
attempts (tasks/gates.py), with their scores. `--approve ID` accepts a shot as it is (kept by
its digest: no later render flags those bytes again); `--reject ID` asks for a new take of it
and renders the video's next version."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from flows.cli import AsJson, BadInput, Out, _settings
from flows.cli_scenes import SHARED, Video, _operation, _shape
from flows.editing import RetakeScene

ShotId = Annotated[Optional[str], typer.Option(
    metavar="ID", help="A flagged shot, as `reelflow review` lists it (s002-image, s002-clip)")]


def review(video: Video, approve: ShotId = None, reject: ShotId = None, out: Out = None,
           as_json: AsJson = False) -> None:
    """The video's flagged shots and their scores; approve one as it is, or reject it for a
    new take."""
    from cache import open_store
    from flows.rerun import published_storyboard
    from tasks.review import approve as keep_approval
    from tasks.review import drift, review_rows, shot_digest

    if approve and reject:
        raise BadInput("review: give --approve or --reject, not both")
    settings = _settings(None, **({"out": out} if out else {}))
    try:
        folder = published_storyboard(video, settings.out).parent
        manifest = json.loads((folder / "manifest.json").read_text())
    except (FileNotFoundError, ValueError) as error:
        raise BadInput(f"review video: {error}") from None
    flagged = {row["id"]: row for row in review_rows(manifest)}
    shot = approve or reject
    if shot is None:
        _print(list(flagged.values()), drift(manifest), as_json)
        return
    option = "--approve" if approve else "--reject"
    if shot not in flagged:
        listed = ", ".join(flagged) or "none"
        raise BadInput(f"review {option}: {shot!r} is not a flagged shot of this video "
                       f"(flagged: {listed})")
    if approve:
        keep_approval(open_store(settings.store), shot_digest(manifest, shot))
        typer.echo(f"approved {shot}: later renders use it without flagging it")
        return
    row = flagged[shot]
    # A shot's kind (image, clip) names its output and the medium a retake makes anew.
    retake = _operation(RetakeScene, "review --reject", scene=row["scene"], media=[row["kind"]])
    shared = {name: default for name, _, default in SHARED}
    _shape(str(folder), [retake], **{**shared, "out": out, "as_json": as_json})


def _print(rows: list[dict], drifted: dict, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps({"review": rows, "drift": drifted}, indent=2))
        return
    for row in rows:
        scores = ", ".join(f"{member} {score:.2f}" for member, score in row["identity"].items())
        typer.echo(f"{row['id']}  attempt {row['chosen']} of {row['attempts']}"
                   f"{'  ' + scores if scores else ''}")
        for reason in row["reasons"]:
            typer.echo(f"    {reason}")
    if drifted["shots"]:
        typer.echo(f"drift: {drifted['first_attempt']:.0%} of {drifted['shots']} shots unlike "
                   f"their references on the first attempt, {drifted['after_retries']:.0%} "
                   "after retries")
    if not rows:
        typer.echo("no shot is flagged")
