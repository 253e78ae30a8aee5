"""The `reelflow` command: plan, render, make, schema, cache (and scene, history, revert:
flows/cli_scenes.py).

Input is validated before anything runs: a bad value exits with code 2 and one line naming
the field, and nothing is generated, stored or published.
"""

from __future__ import annotations

import json
import os
import secrets
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import Annotated, Optional

from config.prefect_defaults import apply_prefect_defaults

DEFAULTED = apply_prefect_defaults()  # before Prefect is imported anywhere

import typer  # noqa: E402
from pydantic import ValidationError  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402

from cache import open_store  # noqa: E402
from cache.store import ArtifactStore  # noqa: E402
from config.settings import Settings, load_settings  # noqa: E402
from flows.admission import Refused, problems, video_request  # noqa: E402
from flows.admission import voice as voice_warnings  # noqa: E402
from flows.creative import Creative  # noqa: E402
from flows.options import RenderOptions  # noqa: E402
from flows.progress_bars import node_progress  # noqa: E402
from flows.serve import command_server  # noqa: E402
from flows.terminal import CommandFailed, run_log  # noqa: E402
from tasks.storyboard import Aspect, DirectorLook, Storyboard, VideoRequest  # noqa: E402

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Turn a topic into a finished, published video.")
cache_app = typer.Typer(no_args_is_help=True, help="Inspect and clean the artifact store.")
app.add_typer(cache_app, name="cache")
stderr = Console(stderr=True)

Topic = Annotated[Optional[str], typer.Argument(help="What the video is about")]
ScriptFile = Annotated[Optional[Path], typer.Option("--script", help="Your own script: one scene per paragraph")]
Scenes = Annotated[int, typer.Option(help="Number of scenes")]
AspectOpt = Annotated[Aspect, typer.Option(help="Frame shape")]
Style = Annotated[str, typer.Option(help="Visual style from config/styles.yaml")]
Voice = Annotated[Optional[str], typer.Option(
    help="Narrator voice [default: each speech provider's voice for the language]")]
Language = Annotated[Optional[str], typer.Option(
    help="Narration language code: en, fr, ja... [default: detected from the topic or script]")]
Music = Annotated[bool, typer.Option(help="Background music under the narration")]
Seed = Annotated[int, typer.Option(help="Seed for the visuals")]
Profile = Annotated[Optional[str], typer.Option(help="Provider profile (config/profiles)")]
Out = Annotated[Optional[Path], typer.Option(help="Publish into this folder [default: ./out]")]
ShortSide = Annotated[Optional[int], typer.Option(help="Short side of the video in pixels [default: 1080]")]
AsJson = Annotated[bool, typer.Option("--json", help="Print a machine-readable summary")]
Publish = Annotated[Optional[str], typer.Option(help="Also publish to gs:// or s3://BUCKET/PREFIX")]
MaxCost = Annotated[Optional[float], typer.Option(help="Refuse to spend more than this (USD)")]
QualityOpt = Annotated[Optional[str], typer.Option(
    "--quality", help="Video models by quality: draft, standard or premium (the shot router), "
    "or off")]
SyncLips = Annotated[Optional[bool], typer.Option(
    "--lipsync/--no-lipsync", help="Sync the lips of who speaks or sings on screen "
    "[default: on]")]
Cast = Annotated[Optional[str], typer.Option(help="Characters of a dialogue, by id: mira,otto")]
Places = Annotated[Optional[str], typer.Option(help="Locations the scenes take place in, by id")]
CharacterDirs = Annotated[Optional[list[Path]], typer.Option(
    "--characters", help="A folder of character profiles (repeatable) [env: REELFLOW_CHARACTERS]")]
LocationDirs = Annotated[Optional[list[Path]], typer.Option(
    "--locations", help="A folder of location profiles (repeatable) [env: REELFLOW_LOCATIONS]")]
Director = Annotated[Optional[str], typer.Option(
    help="A director's look from config/directors (`reelflow directors` lists them)")]
ModeOpt = Annotated[str, typer.Option("--mode", help="explainer, music-video or ad")]
ProductOpt = Annotated[Optional[str], typer.Option(help="An ad's product, by name")]
ProductImages = Annotated[Optional[list[Path]], typer.Option(
    "--product-image", help="A picture of the ad's product (repeatable)")]
Cta = Annotated[Optional[str], typer.Option(
    help="An ad's call to action, set on its end card (at most 60 characters)")]
PlatformOpt = Annotated[Optional[str], typer.Option(
    "--platform", help="Where an ad runs: tiktok, reels, shorts, youtube-preroll or feed")]
Length = Annotated[int, typer.Option(help="An ad's length in seconds: 15, 30 or 60")]
VoiceOver = Annotated[bool, typer.Option(help="An ad's voice-over")]
TrackOpt = Annotated[Optional[Path], typer.Option(
    "--track", help="A music video's track (mp3, wav, m4a, flac): its length and beats")]
LyricsOpt = Annotated[Optional[Path], typer.Option(
    "--lyrics", help="A music video's lyrics: plain text, or LRC for karaoke captions")]
Debug = Annotated[bool, typer.Option("--debug", help="Also show Prefect's log and tracebacks here")]
DryRun = Annotated[bool, typer.Option(
    "--dry-run", help="Say what would be generated and reused, and what it would cost")]
Strict = Annotated[bool, typer.Option(
    "--strict", help="Refuse to run when a chain's preferred provider cannot (no fallbacks)")]


class BadInput(Exception):
    """User input that fails validation: exit 2 with one line."""


def _field_error(error: ValidationError, prefix: str) -> str:
    return str(Refused(problems(error.errors(), prefix)))


def _settings(profile, *, reach: bool = True, **overrides) -> Settings:
    try:
        settings = load_settings(profile, **overrides)
    except ValidationError as error:
        raise BadInput(_field_error(error, "settings")) from None
    except ValueError as error:
        raise BadInput(str(error)) from None
    if reach:
        _reach_buckets(settings.store, settings.publish)
    return settings


@cache
def _reach_buckets(store: str, publish: str | None) -> None:
    """Before anything is paid, once per command: the buckets exist and this machine may use
    them (exit 2 naming what is missing); what a service does not do is said."""
    from cache.buckets import BucketError
    from tasks.preflight import check_buckets

    try:
        _warn(check_buckets(store, publish))
    except BucketError as error:
        raise BadInput(str(error)) from None


def _render_options(strict: bool, **given) -> tuple[RenderOptions, Settings, list[str]]:
    """A render's options and its settings, checked: every chain has a provider that can run.
    A chain whose preferred provider cannot is warned about here (with --strict, refused), and
    the warnings are returned, to be left out of the summary's repeat of them."""
    try:
        options = RenderOptions(**given)
    except ValidationError as error:
        raise BadInput(_field_error(error, "")) from None
    settings = _settings(options.profile, **options.model_dump(exclude={"profile"}))
    from tasks.preflight import check_providers

    with _refusals():
        warnings = check_providers(settings)
    if strict and warnings:
        raise BadInput(f"--strict: {warnings[0]}" + (f" (and {len(warnings) - 1} more)"
                                                     if len(warnings) > 1 else ""))
    _warn(warnings)
    return options, settings, warnings


def _use_profile_folders(characters: list[Path] | None, locations: list[Path] | None) -> None:
    """--characters and --locations add to REELFLOW_CHARACTERS and REELFLOW_LOCATIONS, which
    the flows run in this process read as every other setting."""
    for variable, folders in (("REELFLOW_CHARACTERS", characters), ("REELFLOW_LOCATIONS", locations)):
        if folders:
            given = [str(folder.expanduser().resolve()) for folder in folders]
            os.environ[variable] = os.pathsep.join(filter(None, [os.environ.get(variable), *given]))


def _ids(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _creative(**given) -> Creative:
    try:
        return Creative(**given)
    except ValidationError as error:
        raise BadInput(_field_error(error, "")) from None


def _request(settings, topic, script, scenes, aspect, style, voice, language, music, seed,
             cast, places, creative: Creative) -> tuple[VideoRequest, list[str]]:
    """The request, checked as the API checks it, and the warnings said about it."""
    text = None
    if script is not None:
        try:
            text = script.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as error:
            raise BadInput(f"script: cannot read {script}: {error}") from None
    try:
        request, warnings = video_request(
            settings, _ids(cast), _ids(places), creative=creative, topic=topic, script=text,
            scenes=scenes,
            aspect=aspect, style=style, voice=voice, language=language, music=music, seed=seed)
    except Refused as error:
        raise BadInput(str(error)) from None
    _warn(warnings)
    return request, warnings


def _read_storyboard(source: str) -> Storyboard:
    try:
        text = sys.stdin.read() if source == "-" else Path(source).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise BadInput(f"storyboard: cannot read {source}: {error}") from None
    try:
        return Storyboard.model_validate_json(text)
    except ValidationError as error:
        raise BadInput(_field_error(error, "storyboard")) from None


@contextmanager
def _refusals() -> Iterator[None]:
    """A missing key, a provider setting that names nothing real or a budget that cannot cover
    the render is the user's input: exit 2."""
    from config.secrets import MissingSecretError
    from tasks.budget import BudgetExceeded
    from tasks.providers.registry import ProviderConfigError

    try:
        yield
    except (MissingSecretError, ProviderConfigError, BudgetExceeded) as error:
        raise BadInput(str(error)) from None


def _warn(warnings: list[str]) -> None:
    for warning in warnings:
        typer.echo(f"warning: {warning}", err=True)


def print_preview(preview, as_json: bool) -> None:
    """A --dry-run's answer: the nodes that would be generated (by kind, with their scenes),
    how many would be reused, and the estimated cost. No provider was called."""
    if as_json:
        typer.echo(preview.model_dump_json(indent=2))
        return
    made = preview.generated
    typer.echo(f"would generate {len(made)} nodes, reuse {len(preview.nodes) - len(made)}; "
               f"estimated cost ${preview.cost_usd:.4f}")
    for kind in dict.fromkeys(node.kind for node in made):
        scenes = [node.scene or node.id for node in made if node.kind == kind]
        typer.echo(f"  {kind:8s} {len(scenes):4d}  {', '.join(scenes)}")
    if preview.routing:
        typer.echo(preview.routing.said())
    if not preview.complete:
        typer.echo("the scenes' nodes are counted once the plan is made")


def _print_summary(summary, as_json: bool, already_said: list[str]) -> None:
    if as_json:
        typer.echo(summary.model_dump_json(indent=2))
        return
    _warn([warning for warning in summary.warnings if warning not in already_said])
    stderr.print(f"generated {summary.generated}, reused {summary.cached}, "
                 f"cost ${summary.cost_usd:.4f}, saved ${summary.saved_usd:.4f}")
    if summary.routing:
        stderr.print(summary.routing.said())
    typer.echo(str(summary.video))
    if summary.url:
        typer.echo(summary.url)


@app.command()
def plan(topic: Topic = None, script: ScriptFile = None, scenes: Scenes = 6,
         aspect: AspectOpt = Aspect.portrait, style: Style = "documentary",
         voice: Voice = None, language: Language = None, music: Music = True,
         seed: Seed = 0, cast: Cast = None, places: Places = None,
         characters: CharacterDirs = None, locations: LocationDirs = None,
         director: Director = None, mode: ModeOpt = "explainer", track: TrackOpt = None,
         lyrics: LyricsOpt = None, product: ProductOpt = None,
         product_image: ProductImages = None, cta: Cta = None, platform: PlatformOpt = None,
         length: Length = 15, voice_over: VoiceOver = True,
         profile: Profile = None, debug: Debug = False) -> None:
    """Print a storyboard for TOPIC (or --script) as JSON."""
    _use_profile_folders(characters, locations)
    creative = _creative(director=director, mode=mode, track=track, lyrics=lyrics,
                         product=product, product_image=product_image or [], cta=cta,
                         platform=platform, length=length, voice_over=voice_over)
    settings = _settings(profile)
    from tasks.preflight import check_providers
    from tasks.providers.base import Modality

    with _refusals():
        _warn(check_providers(settings, [Modality.planner]))
    request, _ = _request(settings, topic, script, scenes, aspect, style, voice, language,
                          music, seed, cast, places, creative)
    from tasks.plan import load_storyboard, plan as plan_node, plan_adjustments

    with run_log(open_store(settings.store).log_folder(), "plan", debug=debug) as log, \
            command_server(log):
        planned = plan_node(request, settings)
    _warn(plan_adjustments(planned.record, settings))
    typer.echo(load_storyboard(planned, settings).model_dump_json(indent=2))


@app.command()
def render(storyboard: Annotated[str, typer.Argument(help="Storyboard JSON file, or - for stdin")],
           profile: Profile = None, out: Out = None, short_side: ShortSide = None,
           publish: Publish = None, max_cost: MaxCost = None, quality: QualityOpt = None,
           sync_lips: SyncLips = None, as_json: AsJson = False, strict: Strict = False,
           debug: Debug = False, dry_run: DryRun = False) -> None:
    """Render a storyboard and publish the video."""
    board = _read_storyboard(storyboard)
    options, settings, said = _render_options(strict, profile=profile, out=out,
                                              short_side=short_side, publish=publish,
                                              max_cost=max_cost, quality=quality,
                                              sync_lips=sync_lips)
    if dry_run:
        from tasks.preflight import RenderPreview

        print_preview(RenderPreview.of(board, settings), as_json)
        return
    try:
        warned = voice_warnings(board.voice, board.language, settings)
    except Refused as error:
        raise BadInput(str(error)) from None
    _warn(warned)
    said += warned
    from flows.runners import task_runner
    from flows.video import render_storyboard

    with run_log(open_store(settings.store).log_folder(), "render", debug=debug) as log, \
            node_progress(stderr, planning=False, sync_lips=settings.sync_lips), \
            command_server(log):
        summary = render_storyboard.with_options(task_runner=task_runner(settings))(
            board, options)
    _print_summary(summary, as_json, said)


@app.command()
def make(topic: Topic = None, script: ScriptFile = None, scenes: Scenes = 6,
         aspect: AspectOpt = Aspect.portrait, style: Style = "documentary",
         voice: Voice = None, language: Language = None, music: Music = True,
         seed: Seed = 0, cast: Cast = None, places: Places = None,
         characters: CharacterDirs = None, locations: LocationDirs = None,
         director: Director = None, mode: ModeOpt = "explainer", track: TrackOpt = None,
         lyrics: LyricsOpt = None, product: ProductOpt = None,
         product_image: ProductImages = None, cta: Cta = None, platform: PlatformOpt = None,
         length: Length = 15, voice_over: VoiceOver = True, profile: Profile = None,
         out: Out = None,
         short_side: ShortSide = None, publish: Publish = None, max_cost: MaxCost = None,
         quality: QualityOpt = None, sync_lips: SyncLips = None, as_json: AsJson = False,
         strict: Strict = False, debug: Debug = False, dry_run: DryRun = False) -> None:
    """Plan, render and publish a video for TOPIC (or --script)."""
    _use_profile_folders(characters, locations)
    creative = _creative(director=director, mode=mode, track=track, lyrics=lyrics,
                         product=product, product_image=product_image or [], cta=cta,
                         platform=platform, length=length, voice_over=voice_over)
    options, settings, said = _render_options(strict, profile=profile, out=out,
                                              short_side=short_side, publish=publish,
                                              max_cost=max_cost, quality=quality,
                                              sync_lips=sync_lips)
    request, warned = _request(settings, topic, script, scenes, aspect, style, voice,
                               language, music, seed, cast, places, creative)
    said += warned
    if dry_run:
        from tasks.preflight import RenderPreview

        print_preview(RenderPreview.of_request(request, settings), as_json)
        return
    from flows.runners import task_runner
    from flows.video import make_video

    asked = request.model_dump(exclude={"characters", "locations", "director", "ad", "track"})
    with run_log(open_store(settings.store).log_folder(), "make", debug=debug) as log, \
            node_progress(stderr, planning=True, sync_lips=settings.sync_lips), \
            command_server(log):
        summary = make_video.with_options(task_runner=task_runner(settings))(
            **asked, cast=_ids(cast), places=_ids(places), creative=creative,
            options=options)
    _print_summary(summary, as_json, said)


SheetFile = Annotated[Optional[Path], typer.Option(
    help="Draw a contact sheet (one keyframe of one example scene each) to this PNG")]


@app.command("styles")
def styles_command(sheet: SheetFile = None) -> None:
    """List the visual styles of config/styles.yaml, or draw them side by side (--sheet)."""
    from config.catalog import styles
    from tasks.sheet import style_cards

    if sheet is None:
        for name, style in styles().items():
            typer.echo(f"{name}: {style['typeface']}, {', '.join(style['layouts'])}; "
                       f"{style['prompt']}")
        return
    _draw_sheet(sheet, style_cards())


@app.command("directors")
def directors_command(sheet: SheetFile = None) -> None:
    """List the directors' looks of config/directors, or draw them side by side (--sheet)."""
    from config.bible import load_profiles
    from tasks.sheet import director_cards

    if sheet is None:
        for look in load_profiles(DirectorLook).values():
            low, high = look.shot_seconds
            typer.echo(f"{look.id}: {look.description} Shots {low:g}-{high:g} s, "
                       f"{look.transition.value}.")
        return
    _draw_sheet(sheet, director_cards())


def _draw_sheet(path: Path, cards: dict) -> None:
    from tasks.sheet import contact_sheet

    try:
        contact_sheet(path, cards)
    except OSError as error:
        typer.echo(f"error: --sheet: cannot write {path}: {error.strerror or error}", err=True)
        raise typer.Exit(2)
    typer.echo(str(path))


@app.command()
def schema(model: Annotated[str, typer.Argument(help="storyboard or request")] = "storyboard") -> None:
    """Print the JSON Schema of a storyboard (or of a video request)."""
    models = {"storyboard": Storyboard, "request": VideoRequest}
    if model not in models:
        typer.echo(f"error: model: choose one of {', '.join(models)}", err=True)
        raise typer.Exit(2)
    typer.echo(json.dumps(models[model].model_json_schema(), indent=2))


@app.command()
def serve(host: Annotated[str, typer.Option(help="Address of a server started here")] = "127.0.0.1",
          port: Annotated[int, typer.Option(help="Port of a server started here")] = 4200,
          limit: Annotated[int, typer.Option(help="Flow runs at once")] = 4) -> None:
    """Open the Prefect UI with reelflow's deployments. Ctrl-C (or SIGTERM) stops everything
    it started: no new runs are taken, runs in flight stop and end Cancelled (a rerun resumes
    them), then the Prefect server it started stops, last."""
    settings = _settings(None)
    import signal

    from prefect import serve as serve_deployments
    from prefect.settings import PREFECT_LOGGING_LEVEL

    from flows.serve import deployments_served

    # Served runs are watched in the UI, not through progress bars: they log at INFO.
    served_settings = {PREFECT_LOGGING_LEVEL: "INFO"} if "PREFECT_LOGGING_LEVEL" in DEFAULTED else {}
    with deployments_served(settings, host, port, served_settings) as (api_url, served):
        signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop as on Ctrl-C
        try:  # from the moment it says it serves: a Ctrl-C right after is caught here too
            typer.echo(f"Prefect UI: {api_url.removesuffix('/api')}", err=True)
            typer.echo("Deployments: " + ", ".join(d.name for d in served), err=True)
            # Returns once interrupted: the runner has stopped taking runs and waited for its own.
            serve_deployments(*served, limit=limit, print_starting_message=False)
        except KeyboardInterrupt:
            pass
    raise CommandFailed(["stopped: reelflow serve takes no more runs and the server it started "
                         "is down; a run that was in flight ended Cancelled, and running it "
                         "again resumes it"], 130)


@app.command("api")
def api_command(
        host: Annotated[str, typer.Option(help="Address to listen on")] = "127.0.0.1",
        port: Annotated[int, typer.Option(help="Port to listen on")] = 8000,
        workers: Annotated[bool, typer.Option(help="Run the jobs here (--no-workers when "
                                                   "`reelflow serve` runs them elsewhere)")] = True,
        limit: Annotated[int, typer.Option(help="Jobs run at once here")] = 4,
        prefect_port: Annotated[int, typer.Option(help="Port of a Prefect server started "
                                                       "here")] = 4200,
        certfile: Annotated[Optional[Path], typer.Option(help="TLS certificate (PEM)")] = None,
        keyfile: Annotated[Optional[Path], typer.Option(help="TLS private key (PEM)")] = None,
        quic_bind: Annotated[Optional[str], typer.Option(help="Also serve HTTP/3 on this "
                                                               "HOST:PORT (UDP; needs --certfile)")] = None,
) -> None:
    """Serve the HTTP API (docs at /docs, OpenAPI at /openapi.json): jobs are flow runs of
    the deployments, on the Prefect server PREFECT_API_URL names or one started here."""
    settings = _settings(None)
    from flows.api.keys import Keys, KeysError

    if settings.api_keys_file is None:
        raise BadInput("api keys file: set REELFLOW_API_KEYS_FILE to a file of key hashes "
                       "(`reelflow api-key` makes a key and adds its hash)")
    if (certfile is None) != (keyfile is None) or (quic_bind and certfile is None):
        raise BadInput("certfile: give --certfile and --keyfile together (HTTP/3 needs them)")
    try:
        keys = Keys.load(settings.api_keys_file)
    except KeysError as error:
        raise BadInput(str(error)) from None
    from flows.api.serve import hypercorn_config, serve_api
    from flows.serve import deployments_served

    scheme = "https" if certfile else "http"
    public_url = (settings.api_public_url or f"{scheme}://{host}:{port}").rstrip("/")
    # The runs started here inherit these: each video's link in the UI is a signed API link.
    os.environ["REELFLOW_API_PUBLIC_URL"] = public_url
    if settings.api_url_secret is None:
        os.environ["REELFLOW_API_URL_SECRET"] = secrets.token_urlsafe(32)
    settings = _settings(None)
    with deployments_served(settings, "127.0.0.1", prefect_port) as (_, served):
        typer.echo(f"API: {public_url} (docs: {public_url}/docs)", err=True)
        serve_api(settings, keys, hypercorn_config(host, port, quic_bind, certfile, keyfile),
                  public_url, served if workers else [], limit)


@app.command("mcp")
def mcp_command() -> None:
    """Serve the API's operations to a local agent as MCP tools over stdio (make_video,
    job_status, ...): each is a call of the API at REELFLOW_API_URL with REELFLOW_API_KEY."""
    settings = _settings(None, reach=False)
    if settings.api_key is None:
        raise BadInput("api key: set REELFLOW_API_KEY to a key of the API (`reelflow api-key` "
                       "makes one)")
    import httpx

    from flows.api.mcp import mcp_server

    headers = {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
    mcp_server(lambda ctx: httpx.AsyncClient(base_url=settings.api_url, headers=headers,
                                             timeout=30)).run("stdio")


@app.command("api-key")
def api_key_command(file: Annotated[Optional[Path], typer.Option(
        help="Keys file to add the hash to (default: REELFLOW_API_KEYS_FILE)")] = None) -> None:
    """Make an API key: its hash is added to the keys file, the key is printed once."""
    from flows.api.keys import new_key

    path = file or _settings(None, reach=False).api_keys_file
    if path is None:
        raise BadInput("file: give --file or set REELFLOW_API_KEYS_FILE")
    key, line = new_key()
    try:
        with open(path, "a", encoding="utf-8") as keys:
            keys.write(line + "\n")
    except OSError as error:
        raise BadInput(f"file: cannot write {path}: {error.strerror or error}") from None
    typer.echo(key)


def _store() -> ArtifactStore:
    return open_store(_settings(None).store)


@cache_app.command("stats")
def cache_stats() -> None:
    """Nodes, blobs and bytes in the store, and its size cap."""
    settings = _settings(None)
    store = open_store(settings.store)
    stats = store.stats()
    cap = settings.store_max_mb
    typer.echo(f"store     {store.root}")
    typer.echo(f"nodes     {stats.nodes}  " + "  ".join(
        f"{kind}={count}" for kind, count in sorted(stats.by_kind.items())))
    typer.echo(f"blobs     {stats.blobs}  ({stats.blob_bytes / 1e6:.1f} MB"
               + (f" of a {cap:g} MB cap" if cap else "") + ")")
    typer.echo(f"kept      {stats.kept_manifests} published manifests")
    if cap and stats.blob_bytes > cap * 1e6:
        typer.echo("over the cap: `reelflow cache gc` brings it under")


@cache_app.command("ls")
def cache_ls() -> None:
    """Every stored node: key, kind, provider, outputs, cost."""
    table = Table("key", "kind", "provider", "model", "outputs", "cost $", box=None)
    for record in sorted(_store().records(), key=lambda r: r.created_at):
        outputs = " ".join(f"{name}={a.digest[:8]}" for name, a in record.outputs.items())
        table.add_row(record.key[:12], record.kind, record.provider, record.model, outputs,
                      f"{record.cost_usd:.4f}")
    Console(width=200).print(table)


@cache_app.command("verify")
def cache_verify(media: Annotated[bool, typer.Option(
        help="Also decode stored clips, pictures and speech and check them as a render does")] = False,
                 repair: Annotated[bool, typer.Option(
        help="Forget nodes whose media fails (with --media): the next render makes them again")] = False) -> None:
    """Re-hash every blob; report corrupt blobs and nodes whose blobs are gone."""
    store = _store()
    problems = store.verify_all()
    if media:
        for record, reason in _broken_media(store):
            problems.append(f"node {record.key[:12]} ({record.kind}, {record.provider}) {reason}"
                            + ("; forgotten" if repair else ""))
            if repair:
                store.forget(record.key)
    for problem in problems:
        typer.echo(problem)
    typer.echo(f"{len(problems)} problems")
    raise typer.Exit(1 if problems else 0)


def _broken_media(store: ArtifactStore) -> Iterator[tuple]:
    """Stored nodes whose media fails the checks a render holds new media to."""
    from tasks.graph import KINDS
    from tasks.providers.base import BrokenOutput

    for record in store.records():
        kind = KINDS.get(record.kind)
        if kind is None or kind.check is None or not all(map(store.verify, record.outputs.values())):
            continue  # not media, or already reported as corrupt or lost
        outputs = {name: store.blob_path(artifact.digest) for name, artifact in record.outputs.items()}
        try:
            kind.check(record.parts["params"], outputs)
        except BrokenOutput as error:
            yield record, str(error)


@cache_app.command("gc")
def cache_gc(older_than: Annotated[Optional[float], typer.Option(
        help="Also forget published videos older than this many days")] = None,
             max_mb: Annotated[Optional[float], typer.Option(
        help="Keep the store within this many MB [default: REELFLOW_STORE_MAX_MB]")] = None,
             history_days: Annotated[Optional[float], typer.Option(
        help="Keep a video's earlier versions only this many days after they were replaced "
             "[default: while the video is kept]")] = None) -> None:
    """Remove nodes and blobs that no kept (published) manifest, and no earlier version of a
    video in its history, references."""
    settings = _settings(None, store_max_mb=max_mb)
    cap = settings.store_max_mb
    report = open_store(settings.store).gc(
        older_than_days=older_than, max_bytes=None if cap is None else int(cap * 1e6),
        history_days=history_days)
    typer.echo(f"removed {report.removed_nodes} nodes, {report.removed_blobs} blobs "
               f"({report.freed_bytes / 1e6:.1f} MB); expired {report.expired_manifests} manifests; "
               f"{report.kept_bytes / 1e6:.1f} MB left")


def main() -> None:
    """Entry point: bad input ends in one line on stderr and exit code 2; a failed or stopped
    run in one line per failed node, the log's path, and its exit code (flows/terminal.py)."""
    try:
        app()
    except BadInput as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)
    except CommandFailed as failure:
        for line in failure.lines:
            typer.echo(line, err=True)
        sys.exit(failure.code)
    except KeyboardInterrupt:  # before a run started: nothing was in flight
        typer.echo("stopped (Ctrl-C)", err=True)
        sys.exit(130)
    except Exception as error:  # outside a run: no log to point to
        typer.echo(f"error: {type(error).__name__}: {error}", err=True)
        sys.exit(1)


# Last: they use the option types and helpers above.
from flows.cli_scenes import history_command, revert, scene_app  # noqa: E402
from flows.cli_review import review  # noqa: E402

app.add_typer(scene_app, name="scene")
app.command("history")(history_command)
app.command()(revert)
app.command()(review)

if __name__ == "__main__":
    main()
