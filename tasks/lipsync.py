"""The lipsync node: a scene's clip with the lips of who speaks or sings in it on screen
(Storyboard.voiced) moving with what plays over it.

What plays over it is the audio window: a dialogue scene's lines as compose joins them, then
the quiet to the scene's end; a music video scene's part of the track, from the sum of the
scenes' lengths before it to its cut. A trimmed scene's window starts as far into the clip as
its trim does, after that much quiet. The node is keyed by the clip's digest, the window's
(its audio's digests and where it lies) and the syncer's options, so a scene moved along the
track is synced again and nothing else is; the clip it was made from stays in the store
untouched. A syncer answers a new clip, conformed here to the video's size and frame rate, or,
offline, when the sprites' mouths are open (tasks/providers/local_lipsync.py), which the
scene's segment draws.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from cache import open_store
from config.settings import Settings
from tasks import checks
from tasks.audio import join_speech, padded, seconds_of, wav_slice
from tasks.clips import conformed
from tasks.nodes import Generator, Node
from tasks.providers.base import BrokenOutput, LipSyncer, LipsyncRequest, Usage
from tasks.speech import line_id
from tasks.storyboard import LINE_GAP_SECONDS, Scene, Storyboard

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

LIPSYNC_VERSION = 1


def lipsync_id(scene: Scene) -> str:
    return f"{scene.id}-lipsync"


def audio_needs(scene: Scene, storyboard: Storyboard) -> tuple[str, ...]:
    """The nodes whose audio plays over `scene`: the track, or its lines."""
    if storyboard.track:
        return ("track",)
    return tuple(line_id(scene, number) for number in range(1, len(scene.lines) + 1))


def describe(step: Step, storyboard: Storyboard, settings: Settings, syncer: LipSyncer,
             upstream: Upstream) -> tuple[Node, Generator]:
    scene = storyboard.scene(step.scene)
    clip = upstream[f"{scene.id}-clip"]["clip"]
    width, height = storyboard.aspect.size(settings.short_side)
    lead = scene.trim.start if scene.trim else 0.0
    audio = {need: upstream[need]["audio"].digest for need in audio_needs(scene, storyboard)}
    if storyboard.track:
        window = dict(zip(("from", "to"), storyboard.spans()[scene.id]))
        expected = window["to"] - window["from"]
    else:
        window = {"gap": LINE_GAP_SECONDS, **_after_the_lines(scene, storyboard, settings)}
        expected = window.get("shown", scene.duration)
    params = {"width": width, "height": height, "fps": settings.fps, "lead": lead, **window}
    node = Node.served_by(syncer, id=step.id, kind="lipsync", version=LIPSYNC_VERSION,
                          scene=scene.id, inputs={"clip": clip.digest, **audio},
                          params=params, expected=Usage(video_seconds=lead + expected))

    def generate(workdir):
        store = open_store(settings.store)
        sound = workdir / "window.wav"
        if storyboard.track:
            sound.write_bytes(track_window(store.blob_path(audio["track"]), lead,
                                           window["from"], window["to"]))
        else:
            sound.write_bytes(speech_window([store.blob_path(d).read_bytes()
                                             for d in audio.values()], lead, window, workdir))
        request = LipsyncRequest(clip=store.blob_path(clip.digest), audio=sound,
                                 fps=settings.fps)
        result = syncer.sync(request, workdir)
        if result.mouth is not None:
            return {"mouth": (json.dumps(result.mouth).encode(), "application/json")}, \
                result.usage
        video = conformed(result.video, width, height, settings.fps, result.usage)
        return {"clip": (video, "video/mp4")}, result.usage

    return node, generate


def _after_the_lines(scene: Scene, storyboard: Storyboard, settings: Settings) -> dict:
    """How long the quiet after a scene's lines lasts, by montage.scene_frames' rule: a timed
    scene (an ad's) is on screen for its span, a trimmed one for its trim (`shown` seconds in
    all, never less than its speech), any other for its speech and then the pad."""
    if storyboard.timed:
        start, end = storyboard.spans()[scene.id]
        return {"shown": round(end - start, 6)}
    if scene.trim:
        return {"shown": round(scene.trim.end - scene.trim.start, 6)}
    return {"pad": settings.scene_pad_seconds}


def speech_window(lines: list[bytes], lead: float, window: dict, workdir: Path) -> bytes:
    """A dialogue scene's lines as compose joins them, after `lead` s of quiet and before
    the quiet to the scene's end."""
    speech, _ = join_speech(lines, workdir)
    after = window["pad"] if "pad" in window else max(0.0, window["shown"] - seconds_of(speech))
    return padded(speech, lead, after)


def track_window(track: Path, lead: float, start: float, end: float) -> bytes:
    """The track from `start` to `end` s (its own rate and channels), after `lead` s of quiet."""
    return padded(wav_slice(track, start, end), lead, 0.0)


def check(params: dict, outputs: dict[str, checks.Output]) -> None:
    """A synced clip decodes to its end at the node's size and frame rate (as long as the model
    made it); a mouth's timing is a list of [open, close] seconds."""
    if "clip" in outputs:
        checks.clip({**params, "any_length": True}, outputs)
        return
    try:
        spans = json.loads(checks.read_bytes(outputs["mouth"]))
        if not all(0 <= float(a) < float(b) for a, b in spans):
            raise ValueError("a span that closes before it opens")
    except (ValueError, TypeError) as error:
        raise BrokenOutput(f"the mouth's timing does not read: {error}") from None
