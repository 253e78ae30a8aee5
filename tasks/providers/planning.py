"""What every language-model planner shares: the prompt, one repair, and the storyboard made
from the reply.

The model writes a `DraftStoryboard` (tasks/providers/draft.py: no ids, no orders: those are
ours to assign, so they are stable and safe); a reply that does not validate is sent back once
with the error, and one that still does not is made to fit (`fit_draft`).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from tasks.language import language
from tasks.providers.base import ProviderError
from tasks.providers.draft import DraftStoryboard, fit_draft
from tasks.script import Script, read_script, script_text
from tasks.storyboard import (
    AD_END_CARD_SECONDS,
    Ad,
    CameraMotion,
    Character,
    Line,
    Scene,
    Storyboard,
    VideoRequest,
)


def planner_prompt(request: VideoRequest) -> str:
    if request.ad:
        return _ad_prompt(request)
    if request.track:
        return _music_video_prompt(request)
    source = (_script_source(read_script(request.script, request.characters))
              if request.script else f"Topic: {request.topic}")
    spoken = language(request.language)
    return (
        f"Write a storyboard for a short {request.aspect.value} video of exactly "
        f"{request.scenes} scenes in the visual style '{request.style}', narrated in "
        f"{spoken.name} (language code '{request.language}'): write the title and every line "
        f"of narration and dialogue in {spoken.name}, whatever the language of the topic; "
        f"visual prompts stay in English. Open with a hook, make one point per scene, close "
        f"with a takeaway. Give each scene an on_screen_text in {spoken.name}: its point in "
        f"at most 6 words, shown large on screen. Reply with JSON only.\n\n{_bible(request)}"
        f"{_direction(request)}{source}"
    )


def _ad_prompt(request: VideoRequest) -> str:
    ad, spoken = request.ad, language(request.language)
    count = request.drafted_scenes
    seconds = (ad.seconds - AD_END_CARD_SECONDS) / count
    said = (f"Each scene's narration is the voice-over, in {spoken.name} (language code "
            f"'{request.language}'), at most {round(seconds * 2.2)} words"
            if ad.voice_over else "Leave every narration empty (no voice-over)")
    brief = f"The brief: {request.script or request.topic}\n" if (request.script or
                                                                   request.topic) else ""
    return (
        f"Write a {ad.seconds}-second {request.aspect.value} ad for {ad.platform.value} selling "
        f"'{ad.product.name}', as exactly {count} scenes of about {seconds:.1f} seconds in the "
        f"visual style '{request.style}': open on a hook, then its features, its benefits and "
        f"the product in use. Every scene shows the product. {said}. Give each scene an "
        f"on_screen_text in {spoken.name}: at most 5 words. An end card with the call to "
        f"action '{ad.cta}' is added after your scenes: do not write it. Visual prompts stay "
        f"in English. Reply with JSON only.\n\n{_direction(request)}{brief}")


def _music_video_prompt(request: VideoRequest) -> str:
    track, cuts = request.track, request.cuts()
    lengths = ", ".join(f"{end - start:.1f}" for start, end in zip([0.0, *cuts[:-1]], cuts))
    sections = (f" Its sections start at {', '.join(f'{t:.1f}' for t in track.sections)} s."
                if track.sections else "")
    sung = "\n".join(f"[{line.start:.1f}-{line.end:.1f} s] {line.text}" for line in track.sung)
    lyrics = (f"The lyrics, timed:\n{sung}\n" if sung else
              f"The lyrics:\n{track.lyrics}\n" if track.lyrics else "It has no lyrics given.\n")
    singer = (f"The singer, {request.characters[0].describe()}, is on screen where the song "
              "is sung.\n" if request.characters else "")
    return (
        f"Write a music video for a {track.seconds:.0f}-second song at {track.tempo:.0f} BPM as "
        f"exactly {len(cuts)} scenes, one per shot, in order; the shots last {lengths} "
        f"seconds, cut on the beat.{sections} Concept: {request.topic or request.script}. Make "
        f"it one narrative that flows from shot to shot, each shot's picture following what "
        f"is sung over it, in the visual style '{request.style}'. The song is the soundtrack: "
        f"leave every narration empty and on_screen_text empty. Visual prompts in English. "
        f"Reply with JSON only.\n\n{lyrics}{singer}{_direction(request)}")


def _direction(request: VideoRequest) -> str:
    """The director's look: the camera moves and shot lengths the scenes must keep to."""
    look = request.director
    if look is None:
        return ""
    low, high = look.shot_seconds
    return (f"Direct it in the look '{look.name}': {look.description} Each scene's duration is "
            f"{low:g} to {high:g} seconds; its camera is one of "
            f"{', '.join(motion.value for motion in look.camera)}. Framing: {look.framing}.\n\n")


def _script_source(script: Script) -> str:
    """The script as read (markup removed, headings as scene breaks), and its title if it has one."""
    title = f"The video's title: {script.title}\n" if script.title else ""
    return f"{title}Turn this script into scenes, keeping its words:\n{script_text(script)}"


def _bible(request: VideoRequest) -> str:
    """The cast and places the model must use, as the profiles describe them."""
    if not (request.characters or request.locations):
        return ""
    text = []
    if request.characters:
        text.append("Write each scene as a dialogue in `lines` (leave `narration` empty): the "
                    "speakers alternate, each speaks in character and uses a catchphrase where "
                    "it fits. The cast, by id:")
        text += [f"- {c.id}: {c.describe()}. Personality: {c.personality or 'as you like'}. "
                 f"Catchphrases: {'; '.join(c.catchphrases) or 'none'}."
                 for c in request.characters]
    if request.locations:
        text.append("Set each scene in one of these locations (by id, in `location`):")
        text += [f"- {p.id}: {p.describe()}" for p in request.locations]
    return "\n".join(text) + "\n\n"


def repair_prompt(prompt: str, reply: str, error: str) -> str:
    return (f"{prompt}\n\nYour previous reply was:\n{reply}\n\nIt was rejected: {error}\n"
            "Reply again with corrected JSON only.")


def to_storyboard(draft: DraftStoryboard, request: VideoRequest) -> Storyboard:
    """Our storyboard from the model's draft: ids and order assigned here; a speaker or a
    location the request does not have is an error (sent back once for repair)."""
    speakers = {key.casefold(): c.id for c in request.characters for key in (c.id, c.name)}
    places = {p.id for p in request.locations}
    scenes = []
    for i, draft_scene in enumerate(draft.scenes):
        lines = [Line(text=draft_scene.narration)] if draft_scene.narration.strip() else []
        for line in draft_scene.lines:
            if line.speaker.casefold() not in speakers:
                raise ValueError(f"scenes.{i}.lines: speaker {line.speaker!r} is not in the cast")
            lines.append(Line(speaker=speakers[line.speaker.casefold()], text=line.text))
        if draft_scene.location is not None and draft_scene.location not in places:
            raise ValueError(f"scenes.{i}.location: {draft_scene.location!r} is not a location")
        scenes.append(Scene(id=f"s{i + 1:03d}", order=i, lines=lines,
                            cast=speaking_cast(lines, request.characters),
                            location=draft_scene.location, visual_prompt=draft_scene.visual_prompt,
                            on_screen_text=draft_scene.on_screen_text, camera=draft_scene.camera,
                            duration=draft_scene.duration, shot=draft_scene.shot,
                            intensity=draft_scene.intensity, physics=draft_scene.physics))
    return storyboard_of(request, draft.title, scenes)


def speaking_cast(lines: list[Line], cast: list[Character]) -> list[str]:
    """The cast members who speak in `lines`, in the cast's order."""
    speaking = {line.speaker for line in lines}
    return [c.id for c in cast if c.id in speaking]


def storyboard_of(request: VideoRequest, title: str, scenes: list[Scene]) -> Storyboard:
    """A storyboard of `scenes` for `request`, embedding the profiles the scenes use, its
    scenes kept to the director's camera moves and no shorter than its shortest shot (a
    narrated scene lasts as long as its narration: a longer shot is never cut short)."""
    look = request.director
    if look:
        scenes = [scene.model_copy(update={
            "duration": max(scene.duration, look.shot_seconds[0]),
            "camera": scene.camera if scene.camera in look.camera
            else look.camera[scene.order % len(look.camera)]}) for scene in scenes]
    if request.ad:
        scenes = as_ad(request.ad, scenes)
    if request.track:
        scenes = as_music_video(request, scenes)
    cast = {member for scene in scenes for member in scene.cast}
    places = {scene.location for scene in scenes}
    return Storyboard(
        title=title, style=request.style, aspect=request.aspect, voice=request.voice,
        language=request.language, music=request.music, seed=request.seed,
        characters=[c for c in request.characters if c.id in cast],
        locations=[p for p in request.locations if p.id in places], director=look,
        ad=request.ad, track=request.track, scenes=scenes)


def as_ad(ad: Ad, scenes: list[Scene]) -> list[Scene]:
    """An ad's scenes filling its slot: `scenes` in equal shares of it before the end card,
    each showing the product (and saying nothing without a voice-over), then the end card,
    which says the call to action."""
    share = (ad.seconds - AD_END_CARD_SECONDS) / len(scenes)
    bounds = [round(share * k, 2) for k in range(len(scenes) + 1)]  # adding up to the slot
    shown = [scene.model_copy(update={
        "duration": round(end - start, 2), "product": True,
        "lines": scene.lines if ad.voice_over else []})
        for scene, start, end in zip(scenes, bounds, bounds[1:])]
    end_card = Scene(id=f"s{len(scenes) + 1:03d}", order=len(scenes),
                     lines=[Line(text=ad.cta)] if ad.voice_over else [],
                     visual_prompt=f"End card: {ad.product.name}", on_screen_text=ad.cta,
                     camera=CameraMotion.static, duration=AD_END_CARD_SECONDS,
                     product=True)
    return [*shown, end_card]


def as_music_video(request: VideoRequest, scenes: list[Scene]) -> list[Scene]:
    """A music video's scenes, one per cut, each lasting to its cut; the track plays (nothing
    is narrated). A cast's first member is the singer, on screen where a line is sung over
    the scene (in every scene when the lyrics have no timings)."""
    cuts = request.cuts()
    singer = request.characters[0].id if request.characters else None
    shaped = []
    for scene, start, end in zip(scenes, [0.0, *cuts[:-1]], cuts):
        sung = request.track.sung_over(start, end)
        shaped.append(scene.model_copy(update={
            "duration": round(end - start, 4), "lines": [], "on_screen_text": None,
            "cast": [singer] if singer and sung else []}))
    return shaped


def plan_with_one_repair(ask: Callable[[str], str], request: VideoRequest,
                         provider: str) -> tuple[Storyboard, list[str]]:
    """The storyboard for `request` and what was adjusted to make it fit, one line each.

    `ask(prompt) -> reply text`. A reply that does not validate is sent back once with the
    error; when the second does not either, the latest reply that is a draft at all is fitted
    to the request (`fit_draft`): a count or a length the user did not ask for never fails it.
    """
    prompt = planner_prompt(request)
    replies = [ask(prompt)]
    for attempt in (1, 2):
        try:
            return _validated(replies[-1], request), []
        except (ValidationError, ValueError) as error:
            problem = _one_line(error)
        if attempt == 1:
            replies.append(ask(repair_prompt(prompt, replies[-1], problem)))
    for reply in reversed(replies):
        try:
            draft, adjustments = fit_draft(reply, request)
            return to_storyboard(draft, request), adjustments
        except (ValidationError, ValueError):
            continue
    raise ProviderError(f"{provider}: the storyboard reply did not validate twice: {problem}")


def _validated(reply: str, request: VideoRequest) -> Storyboard:
    board = to_storyboard(DraftStoryboard.model_validate_json(reply), request)
    drafted = len(board.scenes) - (1 if request.ad else 0)  # less the end card added
    if drafted != request.drafted_scenes:
        raise ValueError(f"expected {request.drafted_scenes} scenes, got {drafted}")
    return board


def _one_line(error: Exception) -> str:
    if isinstance(error, ValidationError):
        first = error.errors()[0]
        where = ".".join(str(part) for part in first["loc"])
        return f"{where}: {first['msg']}" if where else first["msg"]
    return str(error)
