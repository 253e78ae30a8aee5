"""The track node: a music video's backing track, taken into the store as a WAV (48 kHz,
16-bit, its own channels), so compose and lip-sync read it by digest, whatever format the user
gave and wherever the file goes after. Keyed by the file's digest: a changed file is a new
track; a file that changed since the storyboard was planned is refused, never silently used."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cache.keys import file_digest
from config.settings import Settings
from tasks.ffmpeg import run_ffmpeg
from tasks.nodes import Generator, Node, NodeError
from tasks.providers.base import Usage
from tasks.storyboard import Storyboard

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

TRACK_VERSION = 1
TRACK_RATE = 48_000


def describe(step: Step, storyboard: Storyboard, settings: Settings, provider: None,
             upstream: Upstream) -> tuple[Node, Generator]:
    track = storyboard.track
    node = Node(id=step.id, kind="track", version=TRACK_VERSION, provider="reelflow",
                provider_version=1, model="ffmpeg", params={"rate": TRACK_RATE},
                inputs={"file": track.digest})

    def take(workdir):
        source = Path(track.path)
        if not source.is_file() or file_digest(source) != track.digest:
            raise NodeError(f"track: {str(source)!r} is missing or changed since the storyboard "
                            "was planned; plan again with the track as it is now")
        audio = workdir / "track.wav"
        run_ffmpeg(["-i", str(source), "-map", "0:a:0", "-ar", str(TRACK_RATE),
                    "-c:a", "pcm_s16le", str(audio)], what="read the track")
        return {"audio": (audio, "audio/wav")}, Usage()

    return node, take
