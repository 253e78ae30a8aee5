"""The characters on screen in a dialogue scene: each cast member's sprite in a row above the
captions, the speaker's `talking` sprite while their line plays, the others' `listening`. Where
the scene's lips are synced offline, a speaker with drawn sprites opens their mouth (their
`talking` sprite) only while the voice is loud, and closes it (their `listening` one) between
syllables.

Every pose a scene needs is drawn once into one picture (a row per pose: everyone listening,
then one row per speaker talking); the scene's filter graph crops the rows and overlays each
during its speaker's lines. One still input per scene, whatever its length.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from tasks.storyboard import SpritePose
from tasks.subtitles import Turn

# The row sits above the caption area (captions take the bottom ~23% of the frame).
ROW_BOTTOM = 0.76
ROW_HEIGHT = {True: 0.24, False: 0.36}  # of the frame's height: portrait or square / landscape
ROW_SPAN = 0.92  # of the frame's width the row may use


@dataclass(frozen=True)
class CastSprite:
    id: str
    talking: Path
    listening: Path
    # Drawn sprites differ at the mouth alone (open, closed), so they can flap with the voice;
    # badges cut from a reference differ in brightness, and would flicker.
    drawn_mouth: bool = False


@dataclass(frozen=True)
class Slot:
    """Where one cast member's sprite is drawn on the frame (top-left corner and size)."""

    x: int
    y: int
    width: int
    height: int


@dataclass(frozen=True)
class Stage:
    path: Path  # the poses, one row each, stacked
    top: int  # the row's y on the frame
    height: int  # of one row; a row is as wide as the frame
    windows: tuple[tuple[tuple[float, float], ...], ...]  # per talking row: when it shows
    slots: tuple[Slot, ...]  # per cast member, in cast order

    def overlay(self, picture: str, scene: str, out: str, *, tag: str) -> list[str]:
        """Filter graph lines that draw this stage over `scene` (timed from 0) into `out`."""
        rows = 1 + len(self.windows)
        lines = [f"{picture}format=rgba,split={rows}"
                 + "".join(f"[p{tag}_{k}]" for k in range(rows)) + ";"]
        lines += [f"[p{tag}_{k}]crop=iw:{self.height}:0:{k * self.height}[q{tag}_{k}];"
                  for k in range(rows)]
        current = scene
        for k in range(rows):
            target = out if k == rows - 1 else f"[o{tag}_{k}]"
            # One picture, repeated: overlay keeps showing a still input's last frame.
            enable = ""
            if k:
                spans = "+".join(f"between(t,{a:.3f},{b:.3f})"
                                 for a, b in self.windows[k - 1]) or "0"  # a mouth that never opens
                enable = f":enable='{spans}'"
            lines.append(f"{current}[q{tag}_{k}]overlay=0:{self.top}{enable}{target};")
            current = target
        return lines


def draw_stage(cast: Sequence[CastSprite], turns: Sequence[Turn], width: int, height: int,
               out: Path, mouth: Sequence[tuple[float, float]] | None = None) -> Stage:
    """Draw every pose of `cast` the scene's `turns` need into `out`; a speaker talks all
    through their turns, or, with a drawn mouth, only while `mouth` is open in them."""
    row_height = round(height * ROW_HEIGHT[height >= width])
    top = round(height * ROW_BOTTOM) - row_height
    speakers = [member for member in cast if any(t.speaker == member.id for t in turns)]
    slot_width = width * ROW_SPAN / len(cast)
    left = (width - slot_width * len(cast)) / 2
    pictures = {member.id: {pose.value: _load(getattr(member, pose.value)) for pose in SpritePose}
                for member in cast}
    slots = []
    for index, member in enumerate(cast):
        picture = pictures[member.id]["listening"]
        scale = min(slot_width * 0.95 / picture.width, row_height / picture.height)
        size = (max(1, round(picture.width * scale)), max(1, round(picture.height * scale)))
        slots.append(Slot(round(left + slot_width * index + (slot_width - size[0]) / 2),
                          row_height - size[1], *size))
    atlas = Image.new("RGBA", (width, row_height * (1 + len(speakers))), (0, 0, 0, 0))
    for row, speaker in enumerate([None, *speakers]):
        for member, slot in zip(cast, slots):
            pose = "talking" if speaker is not None and member.id == speaker.id else "listening"
            sprite = pictures[member.id][pose].resize((slot.width, slot.height),
                                                      Image.Resampling.LANCZOS)
            atlas.alpha_composite(sprite, (slot.x, row * row_height + slot.y))
    atlas.save(out, format="PNG", compress_level=1)
    windows = tuple(tuple(window for t in turns if t.speaker == speaker.id
                          for window in _open((t.start, t.end),
                                              mouth if speaker.drawn_mouth else None))
                    for speaker in speakers)
    return Stage(out, top, row_height, windows,
                 tuple(Slot(s.x, top + s.y, s.width, s.height) for s in slots))


def _open(turn: tuple[float, float], mouth: Sequence[tuple[float, float]] | None
          ) -> list[tuple[float, float]]:
    """The parts of `turn` when the mouth is open: all of it without a mouth's timing."""
    if mouth is None:
        return [turn]
    return [(max(start, turn[0]), min(end, turn[1])) for start, end in mouth
            if start < turn[1] and end > turn[0]]


def _load(path: Path) -> Image.Image:
    with Image.open(path) as picture:
        return picture.convert("RGBA")
