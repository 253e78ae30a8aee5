"""The offline planner: a user's script split into scenes, or a deterministic outline of a topic
in the request's language (config/outlines.yaml); with a cast, a deterministic dialogue between
them. A scene's on-screen text is the script's bold words in its paragraph, else the key phrase
(tasks/providers/key_phrase.py) of what it says, or in an outline of the topic.

Without a language model it knows nothing about a topic: an outline is a placeholder, and the
plan says so (PLACEHOLDER), with the line that plugs a model in."""

from __future__ import annotations

from config.catalog import load_table, styles
from tasks.language import language
from tasks.providers.base import Planner, PlanResult, Usage
from tasks.providers.key_phrase import key_phrase
from tasks.providers.planning import speaking_cast, storyboard_of
from tasks.script import read_script, script_scenes, sentences
from tasks.storyboard import (
    LINE_GAP_SECONDS,
    MAX_ON_SCREEN_CHARS,
    NARRATOR,
    CameraMotion,
    Character,
    Line,
    Scene,
    ShotSize,
    VideoRequest,
)
from tasks.writing import unspaced

# eSpeak speaks about 2.9 words a second at its default rate; plan a little slower so a
# scene's target length covers its narration.
WORDS_PER_SECOND = 2.4
# Chinese, Japanese and Thai have no spaces: their characters are counted, this many a word.
CHARACTERS_PER_WORD = 1.5
SCENE_PADDING_SECONDS = 0.8
MIN_SCENE_SECONDS = 2.5

PLACEHOLDER = ("planner: the narration is a placeholder outline, not facts about the topic (the "
               "offline planner has no language model); for a real one add --profile ollama (a "
               "local Ollama serving llama3.2) or --profile cloud (GEMINI_API_KEY), or narrate "
               "your own text with --script FILE")

class LocalPlanner(Planner):
    name = "local"
    # 3: the outline in the request's language; unspaced scripts timed by characters.
    # 4: each scene's on-screen text; an outline says it is a placeholder.
    # 5: the camera moves of the style. 6: each scene's shot size and intensity.
    version = 6

    class Options(Planner.Options):
        model: str = "outline"

    def plan(self, request: VideoRequest) -> PlanResult:
        if request.ad:
            return _ad(request)
        if request.track:
            return _music_video(request)
        cast = request.characters
        if request.script:
            scenes_lines = _script(request.script, request.scenes, cast)
            written = read_script(request.script, cast)
            title = request.topic or written.title or _first_words(scenes_lines[0][0].text, 8)
            subject = request.topic or title
            # The author's bold words where a scene is a paragraph, else its key phrase.
            authored = written.shown if len(written.shown) == len(scenes_lines) else []
        else:
            outline = _outline_of(request.language)
            texts = _outline(outline, request.topic, request.scenes)
            scenes_lines = (_dialogue(outline, texts, cast) if cast
                            else [[Line(text=t)] for t in texts])
            title = request.topic[:1].upper() + request.topic[1:]
            subject = request.topic
            # An outline says nothing of its own: its scenes show the topic's key phrase.
            authored = [key_phrase(request.topic, request.language)] * len(scenes_lines)
        places = request.locations
        motions = (request.director.camera if request.director
                   else styles()[request.style]["motions"])
        scenes = [
            Scene(
                id=f"s{index + 1:03d}",
                order=index,
                lines=lines,
                cast=speaking_cast(lines, cast),
                location=places[index % len(places)].id if places else None,
                visual_prompt=f"{subject}: {' '.join(line.text for line in lines)}"[:1000],
                on_screen_text=_fitting(authored[index] if authored else None)
                or key_phrase(" ".join(line.text for line in lines), request.language),
                camera=CameraMotion(motions[index % len(motions)]),
                duration=target_seconds(lines),
                **_framing(index, len(scenes_lines), lines),
            )
            for index, lines in enumerate(scenes_lines)
        ]
        return PlanResult(storyboard=storyboard_of(request, title[:200], scenes),
                          usage=Usage(tokens=0),
                          adjustments=[] if request.script else [PLACEHOLDER])


# An ad's shots in turn: the product whole, a detail, someone using it, where it lives.
AD_SHOTS = [("Hero shot of {product}, centred, on a clean backdrop", ShotSize.MS),
            ("Close-up detail of {product}", ShotSize.CU),
            ("A person enjoying {product}", ShotSize.MCU),
            ("{product} in use in an everyday setting", ShotSize.LS)]


def _ad(request: VideoRequest) -> PlanResult:
    """An ad's scenes before its end card (tasks/providers/planning.py adds it and times them):
    the outline's voice-over for ads in the request's language (the product's name alone in
    a language without one), each shot in turn from AD_SHOTS."""
    product = request.ad.product.name
    outline = load_table("outlines").get(language(request.language).code, {}).get("ad") or {
        "hook": "{product}", "points": ["{product}"]}
    said = [outline["hook"], *(outline["points"][i % len(outline["points"])]
                               for i in range(request.drafted_scenes - 1))]
    motions = (request.director.camera if request.director
               else styles()[request.style]["motions"])
    scenes = []
    for index, line in enumerate(said):
        text = line.format(product=product)
        picture, shot = AD_SHOTS[index % len(AD_SHOTS)]
        scenes.append(Scene(
            id=f"s{index + 1:03d}", order=index, lines=[Line(text=text)],
            visual_prompt=f"{picture.format(product=product)}: {text} {request.topic or ''}"
            .strip()[:1000],
            on_screen_text=_fitting(text.rstrip(".")), duration=target_seconds([Line(text=text)]),
            camera=CameraMotion(motions[index % len(motions)]), shot=shot))
    return PlanResult(storyboard=storyboard_of(request, product, scenes), usage=Usage(tokens=0))


# A music video's shots in turn: wide, close, medium, from far.
MUSIC_VIDEO_SHOTS = [ShotSize.LS, ShotSize.CU, ShotSize.MS, ShotSize.ELS, ShotSize.MCU]


def _music_video(request: VideoRequest) -> PlanResult:
    """One scene per cut (tasks/providers/planning.py times them and places the singer): the
    concept with what is sung over it, or with the section it is in."""
    track, cuts = request.track, request.cuts()
    motions = (request.director.camera if request.director
               else styles()[request.style]["motions"])
    scenes = []
    for index, (start, end) in enumerate(zip([0.0, *cuts[:-1]], cuts)):
        sung = [line.text for line in track.sung if line.start < end and line.end > start]
        part = sum(section <= start for section in track.sections) + 1
        said = " / ".join(sung) if sung else f"part {part} of the song"
        shot = MUSIC_VIDEO_SHOTS[index % len(MUSIC_VIDEO_SHOTS)]
        # Numbered: without a model to imagine them, shots of one line would be one picture.
        scenes.append(Scene(
            id=f"s{index + 1:03d}", order=index,
            visual_prompt=f"{request.topic}, shot {index + 1} ({shot.name}): {said}"[:1000],
            camera=CameraMotion(motions[index % len(motions)]), duration=end - start,
            shot=shot, intensity=round(min(1.0, 0.3 + 0.15 * part), 2)))
    title = request.topic[:1].upper() + request.topic[1:]
    return PlanResult(storyboard=storyboard_of(request, title[:200], scenes),
                      usage=Usage(tokens=0))


def _framing(index: int, count: int, lines: list[Line]) -> dict:
    """How a scene is shot, from where it falls and who speaks: a longer video opens on an
    establishing shot, one speaker is a close-up, a dialogue head and shoulders; exclamations
    raise the intensity. Nothing here can tell physics."""
    speakers = {line.speaker for line in lines if line.speaker != NARRATOR}
    shot = (ShotSize.ELS if index == 0 and count > 2 else ShotSize.CU if len(speakers) == 1
            else ShotSize.MCU if speakers else ShotSize.MS)
    exclaimed = sum(line.text.count("!") for line in lines)
    return {"shot": shot, "intensity": round(min(1.0, 0.4 + 0.2 * exclaimed), 2)}


def _outline_of(tag: str) -> dict:
    """The outline's sentences in the language tagged `tag`; for a language without them, the
    topic itself in every scene and no replies: never another language's words."""
    outlines = load_table("outlines")
    return outlines.get(language(tag).code) or {
        "one": "{topic}", "hook": "{topic}", "points": ["{topic}"], "close": "{topic}",
        "replies": [], "farewell": None}


def _outline(outline: dict, topic: str, count: int) -> list[str]:
    """Hook, points, close: always the same outline for the same topic and count."""
    if count == 1:
        return [outline["one"].format(topic=topic)]
    points = outline["points"]
    middle = [points[i % len(points)].format(topic=topic) for i in range(count - 2)]
    return [outline["hook"].format(topic=topic), *middle, outline["close"].format(topic=topic)]


def _dialogue(outline: dict, points: list[str], cast: list[Character]) -> list[list[Line]]:
    """Each outline point said by one cast member and answered by the next, taking turns;
    the first and last scenes open and close on the speakers' catchphrases."""
    replies = outline["replies"]
    scenes = []
    for index, point in enumerate(points):
        first, second = cast[index % len(cast)], cast[(index + 1) % len(cast)]
        if index == 0 and first.catchphrases:
            point = f"{first.catchphrases[0]} {point}"
        lines = [Line(speaker=first.id, text=point)]
        if index == len(points) - 1 and len(points) > 1:
            reply = second.catchphrases[-1] if second.catchphrases else outline["farewell"]
        else:
            reply = replies[index % len(replies)] if replies else None
        if second.id != first.id and reply:
            lines.append(Line(speaker=second.id, text=reply))
        scenes.append(lines)
    return scenes


def _script(script: str, count: int, cast: list[Character]) -> list[list[Line]]:
    """One scene per paragraph; a single paragraph is split into `count` scenes: a narration
    by sentences, a dialogue by lines."""
    paragraphs = script_scenes(script, cast)
    if len(paragraphs) > 1:
        return paragraphs
    lines = paragraphs[0]
    if len(lines) == 1:
        return [[Line(speaker=lines[0].speaker, text=" ".join(group))]
                for group in _even_groups(sentences(lines[0].text), count)]
    return _even_groups(lines, count)


def _even_groups(items: list, count: int) -> list[list]:
    count = min(count, len(items))
    per_group, extra = divmod(len(items), count)
    groups, start = [], 0
    for index in range(count):
        size = per_group + (1 if index < extra else 0)
        groups.append(items[start:start + size])
        start += size
    return groups


def _words(text: str) -> float:
    """Spoken words: spaced words, with each run of unspaced characters counted by its length."""
    spaced = "".join(" " if unspaced(char) else char for char in text)
    return len(spaced.split()) + sum(map(unspaced, text)) / CHARACTERS_PER_WORD


def target_seconds(lines: list[Line]) -> float:
    words = sum(_words(line.text) for line in lines)
    pauses = LINE_GAP_SECONDS * (len(lines) - 1)
    return round(max(MIN_SCENE_SECONDS, words / WORDS_PER_SECOND + pauses + SCENE_PADDING_SECONDS), 1)


def _fitting(text: str | None) -> str | None:
    """`text` as a card sets it (its first letter a capital) where it fits on screen; None
    where it does not (the key phrase is shown)."""
    return text[:1].upper() + text[1:] if text and len(text) <= MAX_ON_SCREEN_CHARS else None


def _first_words(text: str, count: int) -> str:
    return " ".join(text.split()[:count])
