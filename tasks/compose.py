"""The compose node: every scene's clip, narration and karaoke words cut into one video."""

from __future__ import annotations

import json

from prefect import task
from prefect.cache_policies import NO_CACHE

from cache import open_store
from config.settings import Settings
from tasks.montage import SceneMedia, compose_video
from tasks.nodes import Node, NodeOutcome, produce_node, reported
from tasks.providers.base import Usage, WordTiming
from tasks.storyboard import Storyboard

COMPOSE_VERSION = 1


def compose(storyboard: Storyboard, speech: list[NodeOutcome], clips: list[NodeOutcome],
            settings: Settings) -> NodeOutcome:
    """`speech` and `clips` are in the storyboard's scene order."""
    store = open_store(settings.store)
    scenes = storyboard.ordered_scenes()
    width, height = storyboard.aspect.size(settings.short_side)
    inputs = {}
    for index, (voice, clip) in enumerate(zip(speech, clips)):
        inputs[f"{index:03d}-audio"] = voice.output("audio").digest
        inputs[f"{index:03d}-words"] = voice.output("words").digest
        inputs[f"{index:03d}-clip"] = clip.output("clip").digest
    node = Node(id="compose", kind="compose", version=COMPOSE_VERSION, provider="reelflow",
                provider_version=1, model="ffmpeg", inputs=inputs,
                params={"targets": [scene.duration for scene in scenes], "width": width,
                        "height": height, "fps": settings.fps, "music": storyboard.music})

    def generate(workdir):
        media = [
            SceneMedia(
                clip=store.blob_path(clip.output("clip").digest),
                audio=store.blob_path(voice.output("audio").digest),
                words=[WordTiming(**word) for word in
                       json.loads(store.read_bytes(voice.output("words")))],
                target=scene.duration,
            )
            for scene, voice, clip in zip(scenes, speech, clips)
        ]
        video, subtitles = workdir / "video.mp4", workdir / "subtitles.ass"
        compose_video(media, width=width, height=height, fps=settings.fps,
                      music=storyboard.music, video_out=video, subtitles_out=subtitles,
                      workdir=workdir)
        return {"video": (video, "video/mp4"), "subtitles": (subtitles, "text/x-ass")}, Usage()

    return produce_node(settings, node, generate)


@task(name="compose", task_run_name="compose-video", cache_policy=NO_CACHE)
def compose_scenes(storyboard: Storyboard, speech: list[NodeOutcome], clips: list[NodeOutcome],
                   settings: Settings) -> NodeOutcome:
    """Cut the scenes into one video with karaoke subtitles and music."""
    return reported(compose(storyboard, speech, clips, settings))
