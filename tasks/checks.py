"""What a generated file must be before it is stored: checked against what its node asked.

A clip decodes to its last frame, lasts its asked length (within two frames; any length for a
model that does not say what it makes) and has the asked size and frame rate; a picture decodes
completely at the asked size or smaller in its shape; speech decodes and lasts as long as its
word timings say. A file that fails raises BrokenOutput: a provider failure,
retried and then handed to the next provider of the chain, never stored or published.
`reelflow cache verify --media` runs the same checks on what the store holds.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import wave
from pathlib import Path

from PIL import Image

from tasks.ffmpeg import MediaError, ffmpeg_exe, probe
from tasks.providers.base import BrokenOutput

FRAMES_OF_SLACK = 2  # encoders round a clip's length to whole frames, some to a GOP's end
SPEECH_SLACK_S = 0.05  # a word may end as the audio's last sample does

Output = bytes | Path


def clip(params: dict, outputs: dict[str, Output]) -> None:
    """The clip plays to its end, at the node's size, frame rate and length."""
    path = outputs["clip"]
    try:
        info = probe(path)
    except MediaError as error:
        raise BrokenOutput(f"the clip does not open: {error}") from None
    if not info.has_video:
        raise BrokenOutput("the clip has no video stream")
    if (info.width, info.height) != (params["width"], params["height"]):
        raise BrokenOutput(f"the clip is {info.width}x{info.height}, asked "
                           f"{params['width']}x{params['height']}")
    fps = params["fps"]
    if info.fps is None or abs(info.fps - fps) > 0.01:
        raise BrokenOutput(f"the clip runs at {info.fps} fps, asked {fps}")
    frames, errors = _decode(path)
    if errors or frames == 0:
        raise BrokenOutput(f"the clip does not decode completely ({frames} frames): "
                           f"{errors or 'no frame'}")
    if params.get("any_length"):
        return
    asked = round(params["duration"] * fps)
    if abs(frames - asked) > FRAMES_OF_SLACK:
        raise BrokenOutput(f"the clip lasts {frames / fps:.2f} s ({frames} frames), asked "
                           f"{params['duration']:.2f} s ({asked} frames)")


def picture(params: dict, outputs: dict[str, Output]) -> None:
    """The picture decodes to its last row, at the node's size when the node sets one."""
    data = read_bytes(outputs["image"])
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()
            size = image.size
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        raise BrokenOutput(f"the picture does not decode: {error}") from None
    if "width" in params and not _fits(size, (params["width"], params["height"])):
        raise BrokenOutput(f"the picture is {size[0]}x{size[1]}, asked "
                           f"{params['width']}x{params['height']}")


def _fits(size: tuple[int, int], asked: tuple[int, int]) -> bool:
    """The asked size, or smaller in the asked shape (to a pixel's rounding): the gate enlarges
    one that is close and has one that is not made again (tasks/gates.py)."""
    (width, height), (asked_width, asked_height) = size, asked
    return (width <= asked_width and height <= asked_height
            and abs(round(width * asked_height / asked_width) - height) <= 1)


def speech(params: dict, outputs: dict[str, Output]) -> None:
    """The audio decodes and lasts at least until its last word ends."""
    try:
        with wave.open(io.BytesIO(read_bytes(outputs["audio"]))) as audio:
            frames, rate = audio.getnframes(), audio.getframerate()
            complete = len(audio.readframes(frames)) == frames * audio.getsampwidth() * audio.getnchannels()
    except (wave.Error, EOFError) as error:
        raise BrokenOutput(f"the speech audio does not decode: {error}") from None
    if not complete or frames == 0:
        raise BrokenOutput("the speech audio is cut short: fewer samples than its header says")
    try:
        words = json.loads(read_bytes(outputs["words"]))
        last = max((float(word["end"]) for word in words), default=0.0)
    except (ValueError, TypeError, KeyError) as error:
        raise BrokenOutput(f"the word timings do not read: {error}") from None
    if last > frames / rate + SPEECH_SLACK_S:
        raise BrokenOutput(f"the speech audio lasts {frames / rate:.2f} s but its words run to "
                           f"{last:.2f} s")


def _decode(path: Path) -> tuple[int, str]:
    """Decode every frame: how many there were, and what went wrong on the way."""
    completed = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", "error", "-stats", "-i", str(path),
         "-map", "0:v:0", "-f", "null", "-"],
        capture_output=True, text=True, errors="replace")
    frames = re.findall(r"frame=\s*(\d+)", completed.stderr)
    errors = [line for line in completed.stderr.splitlines()
              if line.strip() and not line.lstrip().startswith("frame=") and "frame=" not in line]
    if completed.returncode != 0 and not errors:
        errors = [f"ffmpeg exited with {completed.returncode}"]
    # The last complaint, without ffmpeg's "[h264 @ 0x55…]" prefixes.
    last = re.sub(r"^(\[[^]]*\]\s*)+", "", errors[-1]) if errors else ""
    return int(frames[-1]) if frames else 0, last


def read_bytes(output: Output) -> bytes:
    return output.read_bytes() if isinstance(output, Path) else output
