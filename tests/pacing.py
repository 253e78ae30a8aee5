"""How long a published video and its scenes should last, read back from what its render made:
each scene as long as its lines' speech (LINE_GAP_SECONDS apart) plus the compose node's pad,
whatever duration the storyboard guessed."""

from __future__ import annotations

import io
import wave
from collections import defaultdict

from cache.store import BaseArtifactStore
from tasks.storyboard import LINE_GAP_SECONDS


def scene_seconds(manifest: dict, store: BaseArtifactStore) -> dict[str, float]:
    """Each scene's length by its id: its speech, the gaps between its lines, and the pad."""
    pad = next(node for node in manifest["nodes"] if node["kind"] == "compose")["params"]["pad"]
    lines: dict[str, list[float]] = defaultdict(list)
    for node in manifest["nodes"]:
        if node["kind"] == "tts":
            data = store.blob_path(node["outputs"]["audio"]).read_bytes()
            with wave.open(io.BytesIO(data)) as speech:
                lines[node["scene"]].append(speech.getnframes() / speech.getframerate())
    return {scene: sum(said) + LINE_GAP_SECONDS * (len(said) - 1) + pad
            for scene, said in lines.items()}


def paced_seconds(manifest: dict, store: BaseArtifactStore) -> float:
    return sum(scene_seconds(manifest, store).values())
