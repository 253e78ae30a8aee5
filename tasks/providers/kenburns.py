"""Offline clips: the keyframe with a slow Ken Burns zoom or pan, rendered by ffmpeg."""

from __future__ import annotations

import math
from pathlib import Path

from tasks.ffmpeg import INTERMEDIATE_VIDEO_ARGS, run_ffmpeg
from tasks.providers.base import ClipAnimator, ClipRequest, ClipResult, Usage
from tasks.storyboard import CameraMotion

# How far the camera closes in: zooms travel between 1 and ZOOM, pans cross an image enlarged
# this much. Gentle enough not to distract from the narration.
ZOOM = 1.15

# A whole-pixel pan enlarges the keyframe by its travel, which a long pan's one pixel a frame
# takes past ZOOM; beyond this it falls back to _camera. No move enlarges a picture more, so
# tasks/cards.py keeps the text inside what this leaves on screen.
MAX_PAN_ZOOM = 1.2
# Pans: (moves across, direction of travel).
_PANS = {
    CameraMotion.pan_right: (True, 1),
    CameraMotion.pan_left: (True, -1),
    CameraMotion.pan_down: (False, 1),
    CameraMotion.pan_up: (False, -1),
}

# Per motion, as expressions of the progress {p} from 0 to 1: the power of ZOOM, then where the
# visible window sits in the room left around it, across and down (0 = left/top, 1 = right/bottom).
_PATHS = {
    CameraMotion.zoom_in: ("{p}", "0.5", "0.5"),
    CameraMotion.zoom_out: ("(1-{p})", "0.5", "0.5"),
    CameraMotion.pan_left: ("1", "(1-{p})", "0.5"),
    CameraMotion.pan_right: ("1", "{p}", "0.5"),
    CameraMotion.pan_up: ("1", "0.5", "(1-{p})"),
    CameraMotion.pan_down: ("1", "0.5", "{p}"),
}


class KenBurnsAnimator(ClipAnimator):
    name = "kenburns"
    version = 2  # 2: pans never enlarge past MAX_PAN_ZOOM (a step rounded up could reach 1.3)
    uses_prompt = False  # it moves the keyframe; a prompt edit that keeps the picture keeps the clip
    animates = False

    class Options(ClipAnimator.Options):
        model: str = "ffmpeg"

    def animate(self, request: ClipRequest, workdir: Path) -> ClipResult:
        frames = max(1, round(request.duration * request.fps))
        pan = _steady_pan(request, frames)
        fill = f"{pan[0]}:{pan[1]}" if pan else f"{request.width}:{request.height}"
        # The keyframe is decoded, fitted (cropped, never stretched) and converted once, then
        # repeated in memory: looping the PNG at the demuxer would decode it for every frame.
        filters = [
            f"scale={fill}:force_original_aspect_ratio=increase",
            f"crop={fill}",
            "format=yuv420p",
            f"loop=loop={frames - 1}:size=1",
            "setpts=N",  # -framerate makes the time base 1/fps: frame n shows at n/fps
        ]
        if pan:
            filters.append(pan[2])
        elif request.motion is not CameraMotion.static:
            filters.append(_camera(request.motion, frames))
        video = workdir / "clip.mp4"
        run_ffmpeg(
            ["-framerate", str(request.fps), "-i", str(request.image), "-vf", ",".join(filters),
             "-frames:v", str(frames), "-an", *INTERMEDIATE_VIDEO_ARGS, str(video)],
            what=f"animate {request.image.name} with {request.motion.value}",
        )
        return ClipResult(video=video, usage=Usage(video_seconds=request.duration))


def _steady_pan(request: ClipRequest, frames: int) -> tuple[int, int, str] | None:
    """A pan that moves a whole number of pixels every frame: size to fill, and the crop.

    Equal whole-pixel steps glide as smoothly as sub-pixel sampling and cost a fraction of
    the perspective filter. A pan too long for that to stay gentle returns None.
    """
    if request.motion not in _PANS:
        return None
    across, sign = _PANS[request.motion]
    span = request.width if across else request.height
    # Rounded down: a step rounded up would carry a short pan past ZOOM.
    step = max(1, math.floor((ZOOM - 1) * span / max(frames - 1, 1)))
    travel = step * (frames - 1)
    if travel > (MAX_PAN_ZOOM - 1) * span:
        return None
    scale = (span + travel) / span
    width = request.width + travel if across else 2 * math.ceil(request.width * scale / 2)
    height = request.height + travel if not across else 2 * math.ceil(request.height * scale / 2)
    offset = f"n*{step}" if sign > 0 else f"{travel}-n*{step}"
    x, y = (offset, "(in_h-out_h)/2") if across else ("(in_w-out_w)/2", offset)
    # exact=1: yuv420p crops otherwise snap to even offsets and a 1-pixel step would stutter.
    return width, height, f"crop={request.width}:{request.height}:{x}:{y}:exact=1"


def _camera(motion: CameraMotion, frames: int) -> str:
    """A perspective filter that samples a window of the frame as it moves or changes size.

    It interpolates at sub-pixel positions, so the motion glides; zoompan and crop snap to
    whole pixels and visibly step or shake at these slow speeds.
    """
    progress = f"(in/{max(frames - 1, 1)})"  # `in` counts the frames the filter has seen
    exponent, across, down = (part.format(p=progress) for part in _PATHS[motion])
    # exp(log) rather than pow(): a comma would end the filter in the filtergraph.
    zoom = f"exp({math.log(ZOOM)}*{exponent})"
    width, height = f"(W/{zoom})", f"(H/{zoom})"
    left, top = f"((W-{width})*{across})", f"((H-{height})*{down})"
    right, bottom = f"({left}+{width})", f"({top}+{height})"
    corners = [(left, top), (right, top), (left, bottom), (right, bottom)]
    coordinates = ":".join(
        f"x{index}={x}:y{index}={y}" for index, (x, y) in enumerate(corners)
    )
    return f"perspective={coordinates}:eval=frame"
