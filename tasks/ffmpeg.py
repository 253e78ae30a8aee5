"""The one way reelflow runs ffmpeg: the binary from imageio-ffmpeg, argv lists, no shell.

The bundled build has no ffprobe, so `probe` reads what `ffmpeg -i` prints.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import imageio_ffmpeg


class MediaError(RuntimeError):
    """ffmpeg failed, or a media file is not what it should be."""


@cache
def ffmpeg_exe() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def run_ffmpeg(args: list[str], *, what: str, log: str = "error") -> str:
    """Run ffmpeg with `args` and return what it logged at `log` level (filters such as
    blackdetect report at "info"); raise MediaError naming `what` with ffmpeg's last words."""
    command = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-loglevel", log, "-y", *args]
    completed = subprocess.run(command, capture_output=True, text=True, errors="replace")
    if completed.returncode != 0:
        tail = " | ".join(completed.stderr.strip().splitlines()[-5:])
        raise MediaError(f"ffmpeg failed to {what}: {tail or 'no message'}")
    return completed.stderr


def still(video: Path, at: float, out: Path) -> Path:
    """The frame of `video` shown `at` seconds in, as an image (its type from `out`'s name)."""
    run_ffmpeg(["-ss", f"{at:.3f}", "-i", str(video), "-frames:v", "1", str(out)],
               what=f"take a frame of {video.name}")
    return out


@dataclass(frozen=True)
class MediaInfo:
    duration: float
    width: int | None
    height: int | None
    fps: float | None
    has_video: bool
    has_audio: bool
    video_codec: str | None
    audio_codec: str | None


_DURATION = re.compile(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)")
_VIDEO = re.compile(r"Stream #\S+.*?: Video: (\w+).*?, (\d{2,5})x(\d{2,5})")
_FPS = re.compile(r"(\d+(?:\.\d+)?) fps")
_AUDIO = re.compile(r"Stream #\S+.*?: Audio: (\w+)")


def probe(path: Path) -> MediaInfo:
    """Streams and container duration of a media file."""
    completed = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path)],
        capture_output=True,
        text=True,
        errors="replace",
    )
    text = completed.stderr
    duration = _DURATION.search(text)
    if duration is None:
        raise MediaError(f"cannot read {path.name}: not a media file ffmpeg understands")
    hours, minutes, seconds = duration.groups()
    video = _VIDEO.search(text)
    audio = _AUDIO.search(text)
    fps = _FPS.search(text) if video else None
    return MediaInfo(
        duration=int(hours) * 3600 + int(minutes) * 60 + float(seconds),
        width=int(video.group(2)) if video else None,
        height=int(video.group(3)) if video else None,
        fps=float(fps.group(1)) if fps else None,
        has_video=video is not None,
        has_audio=audio is not None,
        video_codec=video.group(1) if video else None,
        audio_codec=audio.group(1) if audio else None,
    )


def count_frames(path: Path) -> int:
    """Decode every video frame of `path` and count them: the check that a clip really plays."""
    completed = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0",
         "-f", "null", "-"],
        capture_output=True,
        text=True,
        errors="replace",
    )
    frames = re.findall(r"frame=\s*(\d+)", completed.stderr)
    return int(frames[-1]) if frames else 0


# Encoder settings live here so the final encode, the intermediates and the benchmark's
# floor all use the same ones.
FINAL_VIDEO_ARGS = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p"]
FASTSTART = ["-movflags", "+faststart"]  # the index first, so players start before the download ends
# Intermediates are decoded once more by compose: spend bits, not CPU.
INTERMEDIATE_VIDEO_ARGS = ["-c:v", "libx264", "-preset", "ultrafast", "-crf", "16",
                           "-pix_fmt", "yuv420p"]
# The fast coder: the default (twoloop) lets peaks of limited speech through up to 3 dB over
# what it was given (measured here), which no true-peak ceiling survives.
FINAL_AUDIO_ARGS = ["-c:a", "aac", "-aac_coder", "fast", "-b:a", "128k", "-ar", "48000"]
