"""The composition, as nodes: a `segment` node encodes a few scenes' clips with their captions
and the cast's sprites over dialogue; the `compose` node joins the segments without
re-encoding and lays the soundtrack under them (tasks/montage.py does the ffmpeg work).

A segment's key holds only its own scenes and the scene before it (the crossfade into its
first scene), so an edit, a retake or a trim re-encodes the segments it touches and no other.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from cache import open_store
from config.settings import Settings
from tasks.audio import join_speech
from tasks.lipsync import lipsync_id
from tasks.ffmpeg import probe, still
from tasks.manifest import LoudnessReport
from tasks.montage import SceneMedia, encode_segment, join_video, segment_spans, video_captions
from tasks.music import sung_words
from tasks.nodes import Generator, Node
from tasks.providers.base import Usage, WordTiming
from tasks.speech import line_id
from tasks.stage import CastSprite
from tasks.storyboard import LINE_GAP_SECONDS, Scene, SpritePose, Storyboard, Transition
from tasks.subtitles import Speaker, Turn

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

# 5: a thumbnail, a frame a third of the way in, for lists of videos (the web page).
# 4: a segment per few scenes, each scene's length its own (crossfades and frame rounding
# too); trims. 3: captions in a font per script; scenes as long as their speech plus a pad.
COMPOSE_VERSION = 5
THUMBNAIL_AT = 1 / 3  # of the video's length: past the first caption's fade-in


def segments(storyboard: Storyboard) -> list[list[Scene]]:
    """The storyboard's scenes, in order, cut into the segments they are encoded in."""
    scenes = storyboard.ordered_scenes()
    return [scenes[span.start:span.stop] for span in segment_spans([s.id for s in scenes])]


def segment_id(first: Scene) -> str:
    return f"{first.id}-segment"


def sound_inputs(scene: Scene, upstream: Upstream) -> dict[str, str]:
    """The digests of a scene's lines: their audio and their timed words."""
    inputs = {}
    for number in range(1, len(scene.lines) + 1):
        voice = upstream[line_id(scene, number)]
        inputs[f"l{number:02d}-audio"] = voice["audio"].digest
        inputs[f"l{number:02d}-words"] = voice["words"].digest
    return inputs


def picture_inputs(scene: Scene, upstream: Upstream) -> dict[str, str]:
    """The digests of a scene's clip (its lip-synced one, or when its sprites' mouths open, where
    its lips are synced) and of its cast's sprites."""
    inputs = {"clip": upstream[f"{scene.id}-clip"]["clip"].digest}
    synced = upstream.get(lipsync_id(scene), {})
    inputs.update({f"lipsync-{name}": artifact.digest for name, artifact in synced.items()})
    for member in scene.cast:
        for pose in SpritePose:
            inputs[f"sprite-{member}-{pose.value}"] = upstream[f"sprite-{member}"][pose.value].digest
    return inputs


def scene_params(scene: Scene, storyboard: Storyboard) -> dict:
    """What else shapes a scene on screen: who speaks each line (and how their name is shown),
    who stands on stage, and its trim."""
    params = {"speakers": [line.speaker for line in scene.lines], "cast": scene.cast,
              "names": {member: [c.name, c.shown_color] for member in scene.cast
                        for c in [storyboard.character(member)]},
              "trim": scene.trim.bounds if scene.trim else None}
    if storyboard.timed:
        params["span"] = storyboard.spans()[scene.id]
    if storyboard.track:  # the lyrics sung over it are its captions; its singer sings them
        params["sung"] = [word.model_dump() for word in _sung(scene, storyboard)]
        params["singers"] = storyboard.voiced(scene)
    return params


def _sung(scene: Scene, storyboard: Storyboard) -> list[WordTiming]:
    return sung_words(storyboard.track, *storyboard.spans()[scene.id])


def describe_segment(step: Step, storyboard: Storyboard, settings: Settings, provider: None,
                     upstream: Upstream) -> tuple[Node, Generator]:
    scenes = storyboard.ordered_scenes()
    first = next(i for i, scene in enumerate(scenes) if scene.id == step.scene)
    span = next(group for group in segments(storyboard) if group[0].id == step.scene)
    before = scenes[first - 1] if first else None
    read = [before, *span] if before else span
    width, height = storyboard.aspect.size(settings.short_side)
    inputs = {f"{n:03d}-{name}": digest for n, scene in enumerate(read)
              for name, digest in {**sound_inputs(scene, upstream),
                                   **picture_inputs(scene, upstream)}.items()}
    params = {"pad": settings.scene_pad_seconds, "width": width, "height": height,
              "fps": settings.fps, "language": storyboard.language, "gap": LINE_GAP_SECONDS,
              "after_scene": before is not None,
              "scenes": [scene_params(scene, storyboard) for scene in read]}
    if storyboard.director:  # its cuts; without one, every scene crossfades (as before looks)
        params["transition"] = storyboard.director.transition.value
    node = Node(id=step.id, kind="segment", version=COMPOSE_VERSION, provider="reelflow",
                provider_version=1, model="ffmpeg", inputs=inputs, scene=step.scene,
                params=params)

    def generate(workdir):
        store = open_store(settings.store)
        media = [_scene_media(scene, storyboard, f"{n:03d}-", inputs, store, workdir)
                 for n, scene in enumerate(read)]
        video = workdir / "segment.mp4"
        encode_segment(media[1:] if before else media, media[0] if before else None,
                       width=width, height=height, fps=settings.fps,
                       pad=settings.scene_pad_seconds, speakers=_speakers(storyboard, span),
                       language=storyboard.language, out=video, workdir=workdir,
                       transition=transition(storyboard))
        return {"video": (video, "video/mp4")}, Usage()

    return node, generate


def describe(step: Step, storyboard: Storyboard, settings: Settings, provider: None,
             upstream: Upstream) -> tuple[Node, Generator]:
    scenes = storyboard.ordered_scenes()
    width, height = storyboard.aspect.size(settings.short_side)
    inputs = {f"{n:03d}-{name}": digest for n, scene in enumerate(scenes)
              for name, digest in sound_inputs(scene, upstream).items()}
    inputs.update({f"segment-{n:03d}": upstream[segment_id(group[0])]["video"].digest
                   for n, group in enumerate(segments(storyboard))})
    if storyboard.track:  # the soundtrack, as it is
        inputs["track"] = upstream["track"]["audio"].digest
    node = Node(id="compose", kind="compose", version=COMPOSE_VERSION, provider="reelflow",
                provider_version=1, model="ffmpeg", inputs=inputs,
                params={"pad": settings.scene_pad_seconds, "loudness": settings.loudness_lufs,
                        "width": width, "height": height, "fps": settings.fps,
                        "music": storyboard.music, "language": storyboard.language,
                        "gap": LINE_GAP_SECONDS,
                        "scenes": [scene_params(scene, storyboard) for scene in scenes]})

    def generate(workdir):
        store = open_store(settings.store)
        media = [_scene_media(scene, storyboard, f"{n:03d}-", inputs, store, workdir)
                 for n, scene in enumerate(scenes)]
        parts = [store.blob_path(inputs[f"segment-{n:03d}"])
                 for n in range(len(segments(storyboard)))]
        video, subtitles = workdir / "video.mp4", workdir / "subtitles.ass"
        subtitles.write_text(video_captions(
            media, width=width, height=height, fps=settings.fps, pad=settings.scene_pad_seconds,
            speakers=_speakers(storyboard, scenes), language=storyboard.language),
            encoding="utf-8")
        composed = join_video(parts, media, fps=settings.fps, pad=settings.scene_pad_seconds,
                              music=storyboard.music, loudness=settings.loudness_lufs,
                              video_out=video, workdir=workdir,
                              track=store.blob_path(inputs["track"]) if storyboard.track
                              else None)
        loudness = workdir / "loudness.json"
        report = LoudnessReport(target_lufs=settings.loudness_lufs,
                                integrated_lufs=composed.loudness.integrated,
                                true_peak_dbtp=composed.loudness.true_peak, passes=composed.passes)
        loudness.write_text(report.model_dump_json(), encoding="utf-8")
        thumbnail = still(video, probe(video).duration * THUMBNAIL_AT, workdir / "thumbnail.jpg")
        return {"video": (video, "video/mp4"), "subtitles": (subtitles, "text/x-ass"),
                "loudness": (loudness, "application/json"),
                "thumbnail": (thumbnail, "image/jpeg")}, Usage()

    return node, generate


def transition(storyboard: Storyboard) -> Transition:
    return storyboard.director.transition if storyboard.director else Transition.crossfade


def _speakers(storyboard: Storyboard, scenes: list[Scene]) -> dict[str, Speaker]:
    """How the named speakers of `scenes` are shown in captions."""
    named = {line.speaker for scene in scenes for line in scene.lines} & {
        c.id for c in storyboard.characters}
    return {c.id: Speaker(c.name, c.shown_color) for c in storyboard.characters if c.id in named}


def _scene_media(scene: Scene, storyboard: Storyboard, prefix: str, inputs: dict[str, str],
                 store, workdir: Path) -> SceneMedia:
    """A scene's stored clip, its lines joined into one WAV (at the highest rate among them;
    none: an empty one), its words timed on that WAV, its cast's sprites (its inputs are named
    `prefix`…) and, in a timed storyboard, its span."""
    count = len(scene.lines)
    audio, spans = join_speech([store.blob_path(inputs[f"{prefix}l{k:02d}-audio"]).read_bytes()
                                for k in range(1, count + 1)], workdir)
    words, turns = [], []
    for k, (line, (start, end)) in enumerate(zip(scene.lines, spans), 1):
        said = json.loads(store.blob_path(inputs[f"{prefix}l{k:02d}-words"]).read_bytes())
        turns.append(Turn(line.speaker, len(words), start, end))
        words += [WordTiming(text=w["text"], start=w["start"] + start, end=w["end"] + start)
                  for w in said]
    if storyboard.track:
        words = _sung(scene, storyboard)
        turns = [Turn(singer, 0, start, end) for singer in storyboard.voiced(scene)
                 for start, end in storyboard.track.sung_over(*storyboard.spans()[scene.id])]
    path = workdir / f"scene-{prefix}audio.wav"
    path.write_bytes(audio)
    # The compose node has no clip: its segments have them. A lip-synced one replaces it.
    clip = inputs.get(f"{prefix}lipsync-clip", inputs.get(f"{prefix}clip"))
    mouth = inputs.get(f"{prefix}lipsync-mouth")
    cast = tuple(CastSprite(member, **{
        pose.value: store.blob_path(inputs[f"{prefix}sprite-{member}-{pose.value}"])
        for pose in SpritePose}, drawn_mouth=bool(storyboard.character(member).sprites))
        for member in scene.cast if clip)
    return SceneMedia(clip=clip and store.blob_path(clip), audio=path, words=words,
                      turns=tuple(turns), cast=cast, trim=scene.trim.bounds if scene.trim else None,
                      span=storyboard.spans()[scene.id] if storyboard.timed else None,
                      mouth=mouth and tuple(map(tuple, json.loads(
                          store.blob_path(mouth).read_bytes()))))
