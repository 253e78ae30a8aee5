"""The compose node: every scene's clip, lines and karaoke words cut into one video, with the
cast's sprites over dialogue scenes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from cache import open_store
from config.settings import Settings
from tasks.audio import at_rate, join_lines, rate_of
from tasks.manifest import LoudnessReport
from tasks.montage import SceneMedia, compose_video
from tasks.nodes import Generator, Node
from tasks.providers.base import Usage, WordTiming
from tasks.speech import line_id
from tasks.stage import CastSprite
from tasks.storyboard import LINE_GAP_SECONDS, SpritePose, Storyboard
from tasks.subtitles import Speaker, Turn

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

COMPOSE_VERSION = 3  # 3: captions in a font per script; scenes as long as their speech plus a pad; loudness to a target


def describe(step: Step, storyboard: Storyboard, settings: Settings, provider: None,
             upstream: Upstream) -> tuple[Node, Generator]:
    scenes = storyboard.ordered_scenes()
    width, height = storyboard.aspect.size(settings.short_side)
    inputs = {}
    for index, scene in enumerate(scenes):
        for number in range(1, len(scene.lines) + 1):
            voice = upstream[line_id(scene, number)]
            inputs[f"{index:03d}-l{number:02d}-audio"] = voice["audio"].digest
            inputs[f"{index:03d}-l{number:02d}-words"] = voice["words"].digest
        inputs[f"{index:03d}-clip"] = upstream[f"{scene.id}-clip"]["clip"].digest
    on_stage = {member for scene in scenes for member in scene.cast}
    for member in sorted(on_stage):
        for pose in SpritePose:
            inputs[f"sprite-{member}-{pose.value}"] = upstream[f"sprite-{member}"][pose.value].digest
    speakers = {c.id: Speaker(c.name, c.shown_color) for c in storyboard.characters}
    node = Node(id="compose", kind="compose", version=COMPOSE_VERSION, provider="reelflow",
                provider_version=1, model="ffmpeg", inputs=inputs,
                params={"pad": settings.scene_pad_seconds, "loudness": settings.loudness_lufs,
                        "width": width, "height": height, "fps": settings.fps,
                        "music": storyboard.music, "language": storyboard.language,
                        "gap": LINE_GAP_SECONDS,
                        "speakers": [[line.speaker for line in scene.lines] for scene in scenes],
                        "cast": [scene.cast for scene in scenes],
                        "names": {i: [s.name, s.color] for i, s in sorted(speakers.items())}})

    def generate(workdir):
        store = open_store(settings.store)
        sprites = {member: CastSprite(member, **{
            pose.value: store.blob_path(inputs[f"sprite-{member}-{pose.value}"])
            for pose in SpritePose}) for member in on_stage}
        lines = [[store.blob_path(inputs[f"{index:03d}-l{n:02d}-audio"]).read_bytes()
                  for n in range(1, len(scene.lines) + 1)] for index, scene in enumerate(scenes)]
        rate = max(rate_of(line) for scene_lines in lines for line in scene_lines)
        media = []
        for index, scene in enumerate(scenes):
            audio, spans = join_lines([at_rate(line, rate, workdir) for line in lines[index]],
                                      LINE_GAP_SECONDS)
            words, turns = [], []
            for n, (line, (start, end)) in enumerate(zip(scene.lines, spans), 1):
                said = json.loads(store.blob_path(inputs[f"{index:03d}-l{n:02d}-words"]).read_bytes())
                turns.append(Turn(line.speaker, len(words), start, end))
                words += [WordTiming(text=w["text"], start=w["start"] + start, end=w["end"] + start)
                          for w in said]
            path = workdir / f"scene-{index:04d}.wav"
            path.write_bytes(audio)
            media.append(SceneMedia(clip=store.blob_path(inputs[f"{index:03d}-clip"]), audio=path,
                                    words=words, turns=tuple(turns),
                                    cast=tuple(sprites[member] for member in scene.cast)))
        video, subtitles = workdir / "video.mp4", workdir / "subtitles.ass"
        composed = compose_video(media, width=width, height=height, fps=settings.fps,
                                 music=storyboard.music, pad=settings.scene_pad_seconds,
                                 loudness=settings.loudness_lufs, video_out=video,
                                 subtitles_out=subtitles, workdir=workdir, speakers=speakers,
                                 language=storyboard.language)
        loudness = workdir / "loudness.json"
        report = LoudnessReport(target_lufs=settings.loudness_lufs,
                                integrated_lufs=composed.loudness.integrated,
                                true_peak_dbtp=composed.loudness.true_peak, passes=composed.passes)
        loudness.write_text(report.model_dump_json(), encoding="utf-8")
        return {"video": (video, "video/mp4"), "subtitles": (subtitles, "text/x-ass"),
                "loudness": (loudness, "application/json")}, Usage()

    return node, generate
