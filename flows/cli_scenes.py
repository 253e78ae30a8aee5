"""`reelflow scene …`, `reelflow history` and `reelflow revert`: shape a published video scene
by scene. Each operation makes the video's next version (tasks/history.py) and, unless
--no-render, renders it: only the nodes it touched are generated. --dry-run says what would
be generated and what it would cost, and calls no provider."""

from __future__ import annotations

import inspect
import time
import typing
from typing import Annotated, Optional

import typer
from pydantic import ValidationError

from flows.cli import (
    AsJson,
    BadInput,
    Debug,
    DryRun,
    MaxCost,
    Out,
    Profile,
    Publish,
    QualityOpt,
    ShortSide,
    Strict,
    SyncLips,
    _print_summary,
    _render_options,
    _settings,
    print_preview,
    stderr,
)
from flows.editing import (
    AddScene,
    DeleteScene,
    EditRefused,
    EditScene,
    MoveScene,
    RetakeScene,
    Revert,
    TrimScene,
    UseTake,
)
from tasks.storyboard import CameraMotion, ShotSize

scene_app = typer.Typer(no_args_is_help=True, help="Shape a published video scene by scene.")

Video = Annotated[str, typer.Argument(
    help="The published video: its folder (name or path) or its storyboard.json")]
SceneId = Annotated[str, typer.Argument(help="The scene's id (see `reelflow scene list`)")]
After = Annotated[Optional[str], typer.Option(help="The scene it goes after")]
Narration = Annotated[Optional[str], typer.Option(help="What is said")]
Visual = Annotated[Optional[str], typer.Option(help="What the picture shows")]
Camera = Annotated[Optional[CameraMotion], typer.Option(help="The camera's motion")]
NoRender = Annotated[bool, typer.Option("--no-render", help="Make the version; render it later")]
First = Annotated[bool, typer.Option("--first", help="Make it the first scene")]


def _operation(model, name: str | None = None, **fields):
    """The operation, or exit 2 naming it (`name`, else its op) and its field as the other
    refusals do."""
    try:
        return model(**fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = ".".join(map(str, first["loc"])) or "value"
        raise BadInput(f"{name or model.model_fields['op'].default} {field}: {first['msg']}"
                       ) from None


def _shape(video: str, operations: list, revert=None, *, no_render: bool, dry_run: bool,
           as_json: bool, strict: bool, debug: bool, **given) -> None:
    """Make the next version of `video` and render it (or save it, or preview it)."""
    from cache import open_store
    from flows.progress_bars import node_progress
    from flows.rerun import next_version, published_storyboard, rerun_with_edits
    from flows.runners import task_runner
    from flows.serve import command_server
    from flows.terminal import run_log
    from tasks import history as histories
    from tasks.preflight import RenderPreview

    options, settings, said = _render_options(strict, **given)
    if revert is not None:
        revert = _operation(Revert, "revert", version=revert)
    try:
        source = published_storyboard(video, settings.out)
        history = next_version(source, operations, revert, settings)
    except (FileNotFoundError, EditRefused) as error:
        raise BadInput(str(error)) from None
    if dry_run:
        print_preview(RenderPreview.of(history.current.storyboard, settings), as_json)
        return
    if no_render:
        histories.save(history, source.parent)
        typer.echo(f"version {history.current.version} (not rendered): {history.current.change}")
        return
    with run_log(open_store(settings.store).log_folder(), "scene", debug=debug) as log, \
            node_progress(stderr, planning=False, sync_lips=settings.sync_lips), \
            command_server(log):
        summary = rerun_with_edits.with_options(task_runner=task_runner(settings))(
            str(source), operations, revert, False, options)
    _print_summary(summary, as_json, said)


# The options every operation takes, after its own: (name, type, default).
SHARED = [("no_render", NoRender, False), ("dry_run", DryRun, False), ("profile", Profile, None),
          ("out", Out, None), ("short_side", ShortSide, None), ("publish", Publish, None),
          ("max_cost", MaxCost, None), ("quality", QualityOpt, None),
          ("sync_lips", SyncLips, None), ("as_json", AsJson, False), ("strict", Strict, False),
          ("debug", Debug, False)]


def operation_command(name: str):
    """A `scene NAME VIDEO …` command from a function that makes the operation from its own
    arguments: the command takes the video first and the shared options last, then makes the
    video's next version with the operation."""
    def decorate(make):
        keyword = inspect.Parameter.KEYWORD_ONLY
        hints = typing.get_type_hints(make, include_extras=True)  # the types, not their names
        own = [parameter.replace(annotation=hints[parameter.name])
               for parameter in inspect.signature(make).parameters.values()]
        parameters = [inspect.Parameter("video", inspect.Parameter.POSITIONAL_OR_KEYWORD,
                                        annotation=Video), *own,
                      *(inspect.Parameter(option, keyword, annotation=kind, default=default)
                        for option, kind, default in SHARED)]

        def command(video: str, **given) -> None:
            shared = {option: given.pop(option) for option, _, _ in SHARED}
            _shape(video, [make(**given)], **shared)

        command.__signature__ = inspect.Signature(parameters, return_annotation=None)
        command.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        command.__doc__ = make.__doc__
        scene_app.command(name)(command)
        return make
    return decorate


@scene_app.command("list")
def scene_list(video: Video, out: Out = None, as_json: AsJson = False) -> None:
    """The scenes of the video's current version: order, id, the clip length it asks for,
    takes, trim, narration and picture."""
    board = _history(video, out).current.storyboard
    if as_json:
        typer.echo(board.model_dump_json(include={"scenes"}, indent=2))
        return
    for number, scene in enumerate(board.ordered_scenes(), 1):
        takes = scene.takes
        trim = f" trim {scene.trim.start:g}-{scene.trim.end:g}s" if scene.trim else ""
        typer.echo(f"{number:3d} {scene.id}  asks {scene.duration:g}s  take image {takes.image} "
                   f"clip {takes.clip} speech {takes.speech}{trim}  shot {scene.shot.value} "
                   f"intensity {scene.intensity:g}{' physics' if scene.physics else ''}\n"
                   f"      says: {scene.narration}\n      shows: {scene.visual_prompt}")


@operation_command("add")
def scene_add(narration: Annotated[str, typer.Option(help="What is said")],
              after: After = None, visual: Visual = None, camera: Camera = None,
              first: First = False) -> AddScene:
    """Add a scene after another (--after ID) or first (--first); it gets a new id."""
    if (after is None) == (not first):
        raise BadInput("add after: give --after ID or --first")
    return _operation(AddScene, after=after, narration=narration, visual_prompt=visual,
                      **({"camera": camera} if camera else {}))


@operation_command("delete")
def scene_delete(scene: SceneId) -> DeleteScene:
    """Delete a scene (its takes stay in the store, and in the history)."""
    return _operation(DeleteScene, scene=scene)


@operation_command("move")
def scene_move(scene: SceneId, after: After = None, first: First = False) -> MoveScene:
    """Move a scene after another (--after ID) or first (--first)."""
    if (after is None) == (not first):
        raise BadInput("move after: give --after ID or --first")
    return _operation(MoveScene, scene=scene, after=after)


@operation_command("edit")
def scene_edit(scene: SceneId, narration: Narration = None, visual: Visual = None,
               camera: Camera = None, on_screen_text: Annotated[Optional[str], typer.Option(
                   help="A few words set on the picture; a space for none")] = None,
               shot: Annotated[Optional[ShotSize], typer.Option(
                   help="Shot size (routes the clip: config/router.yaml)")] = None,
               intensity: Annotated[Optional[float], typer.Option(
                   help="How strong the emotion or action, 0-1")] = None,
               physics: Annotated[Optional[bool], typer.Option(
                   "--physics/--no-physics", help="Action whose physics must look right")] = None
               ) -> EditScene:
    """Change a scene's narration, picture, camera motion, on-screen text or how it is shot."""
    return _operation(EditScene, scene=scene, narration=narration, visual_prompt=visual,
                      camera=camera, on_screen_text=on_screen_text, shot=shot,
                      intensity=intensity, physics=physics)


@operation_command("trim")
def scene_trim(scene: SceneId, start: Annotated[float, typer.Option(help="Seconds into the clip")],
               end: Annotated[float, typer.Option(help="Seconds into the clip")]) -> TrimScene:
    """Show only START to END of the scene's clip (as generated; the clip itself is kept)."""
    return _operation(TrimScene, scene=scene, start=start, end=end)


@operation_command("retake")
def scene_retake(scene: SceneId,
                 image: Annotated[bool, typer.Option("--image", help="A new keyframe (and clip)")] = False,
                 clip: Annotated[bool, typer.Option("--clip", help="A new clip of the keyframe")] = False,
                 speech: Annotated[bool, typer.Option("--speech", help="New speech")] = False
                 ) -> RetakeScene:
    """Make a new take of a scene's keyframe (the default), clip or speech; every earlier take
    stays in the store (`scene use` goes back to one at no cost)."""
    media = [name for name, chosen in (("image", image), ("clip", clip), ("speech", speech))
             if chosen] or ["image"]
    return _operation(RetakeScene, scene=scene, media=media)


@scene_app.command("takes")
def scene_takes(video: Video, scene: SceneId, out: Out = None) -> None:
    """The takes of a scene that were made, and which is in use."""
    history = _history(video, out)
    now = next((s for s in history.current.storyboard.scenes if s.id == scene), None)
    if now is None:
        raise BadInput(f"scene takes scene: no scene {scene!r} in the current version")
    for media in ("image", "clip", "speech"):
        for take, version in sorted(history.takes(scene, media).items()):
            mark = "  (in use)" if getattr(now.takes, media) == take else ""
            typer.echo(f"{media} take {take}: made for version {version}{mark}")


@operation_command("use")
def scene_use(scene: SceneId,
              take: Annotated[int, typer.Option(help="The take (see `reelflow scene takes`)")],
              media: Annotated[str, typer.Option(help="image, clip or speech")] = "image"
              ) -> UseTake:
    """Go back to a take made before: rendered from the store, at no provider cost."""
    return _operation(UseTake, scene=scene, media=media, take=take)


def history_command(video: Video, out: Out = None, as_json: AsJson = False) -> None:
    """Every version of a video: when it was made, what changed, where it was published."""
    history = _history(video, out)
    if as_json:
        typer.echo(history.model_dump_json(indent=2, exclude={"versions": {"__all__": {"storyboard"}}}))
        return
    for version in history.versions:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(version.at))
        mark = "*" if version is history.current else " "
        typer.echo(f"{mark}{version.version:3d}  {when}  {version.change}  "
                   f"[{version.folder or 'not rendered'}]")


def revert(video: Video, to: Annotated[int, typer.Option("--to", help="The version to make current")],
           dry_run: DryRun = False, profile: Profile = None, out: Out = None,
           short_side: ShortSide = None, publish: Publish = None, max_cost: MaxCost = None,
           quality: QualityOpt = None, sync_lips: SyncLips = None, as_json: AsJson = False,
           strict: Strict = False, debug: Debug = False) -> None:
    """Make an earlier version current again: rendered from the store at no provider cost."""
    _shape(video, [], to, no_render=False, dry_run=dry_run, as_json=as_json, strict=strict,
           debug=debug, profile=profile, out=out, short_side=short_side, publish=publish,
           max_cost=max_cost, quality=quality, sync_lips=sync_lips)


def _history(video: str, out):
    from flows.rerun import published_storyboard
    from tasks import history as histories

    settings = _settings(None, **({"out": out} if out else {}))
    try:
        return histories.load(published_storyboard(video, settings.out))
    except FileNotFoundError as error:
        raise BadInput(str(error)) from None
