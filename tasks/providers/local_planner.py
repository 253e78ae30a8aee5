"""The offline planner: a user's script split into scenes, or a deterministic outline of a topic."""

from __future__ import annotations

import re

from tasks.providers.base import Planner, PlanResult, Usage
from tasks.storyboard import CameraMotion, Line, Scene, Storyboard, VideoRequest

# eSpeak speaks about 2.9 words a second at its default rate; plan a little slower so a
# scene's target length covers its narration.
WORDS_PER_SECOND = 2.4
SCENE_PADDING_SECONDS = 0.8
MIN_SCENE_SECONDS = 2.5

MOTIONS = [CameraMotion.zoom_in, CameraMotion.pan_right, CameraMotion.zoom_out,
           CameraMotion.pan_left, CameraMotion.pan_up, CameraMotion.pan_down]

POINTS = [
    "Start with the basics: {topic} is simpler than it looks.",
    "Here is the part most people miss about {topic}.",
    "A real example makes {topic} easy to picture.",
    "Now the surprising detail behind {topic}.",
    "Why {topic} matters in everyday life.",
    "One common myth about {topic}, and what is actually true.",
    "How experts think about {topic}.",
    "A quick way to remember how {topic} works.",
]


class LocalPlanner(Planner):
    name = "local"
    version = 1

    class Options(Planner.Options):
        model: str = "outline"

    def plan(self, request: VideoRequest) -> PlanResult:
        if request.script:
            texts = _split_script(request.script, request.scenes)
            title = request.topic or _first_words(request.script, 8)
            subject = request.topic or title
        else:
            texts = _outline(request.topic, request.scenes)
            title = request.topic[:1].upper() + request.topic[1:]
            subject = request.topic
        scenes = [
            Scene(
                id=f"s{index + 1:03d}",
                order=index,
                lines=[Line(text=text)],
                visual_prompt=f"{subject}: {text}"[:1000],
                camera=MOTIONS[index % len(MOTIONS)],
                duration=_target_seconds(text),
            )
            for index, text in enumerate(texts)
        ]
        storyboard = Storyboard(
            title=title[:200], style=request.style, aspect=request.aspect, voice=request.voice,
            language=request.language, music=request.music, seed=request.seed, scenes=scenes,
        )
        return PlanResult(storyboard=storyboard, usage=Usage(tokens=0))


def _outline(topic: str, count: int) -> list[str]:
    """Hook, points, close: always the same outline for the same topic and count."""
    if count == 1:
        return [f"Here is {topic}, in one breath."]
    hook = f"Ever wondered about {topic}? Let's find out."
    close = f"That's {topic} in a nutshell. Thanks for watching!"
    points = [POINTS[i % len(POINTS)].format(topic=topic) for i in range(count - 2)]
    return [hook, *points, close]


def _split_script(script: str, count: int) -> list[str]:
    """One scene per paragraph; a single paragraph is split by sentences into `count` scenes."""
    paragraphs = [p.strip() for p in re.split(r"\n\s*\n", script) if p.strip()]
    if len(paragraphs) > 1:
        return [re.sub(r"\s+", " ", p)[:1000] for p in paragraphs]
    sentences = [s for s in re.split(r"(?<=[.!?…])\s+", paragraphs[0]) if s]
    count = min(count, len(sentences))
    per_scene, extra = divmod(len(sentences), count)
    scenes, start = [], 0
    for index in range(count):
        size = per_scene + (1 if index < extra else 0)
        scenes.append(" ".join(sentences[start:start + size])[:1000])
        start += size
    return scenes


def _target_seconds(text: str) -> float:
    words = len(text.split())
    return round(max(MIN_SCENE_SECONDS, words / WORDS_PER_SECOND + SCENE_PADDING_SECONDS), 1)


def _first_words(text: str, count: int) -> str:
    return " ".join(text.split()[:count])
