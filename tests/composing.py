"""The whole composition in one call, from montage's pieces as the segment and compose nodes
use them: for tests of the picture and sound that need no store."""

from __future__ import annotations

from pathlib import Path

from tasks.montage import Composed, SceneMedia, encode_segment, join_video, segment_spans, video_captions
from tasks.storyboard import Transition


def compose_video(scenes: list[SceneMedia], *, width: int, height: int, fps: int, music: bool,
                  pad: float, loudness: float, video_out: Path, subtitles_out: Path,
                  workdir: Path, speakers=None, language: str = "en",
                  spans: list[range] | None = None,
                  transition: Transition = Transition.crossfade) -> Composed:
    """`spans`: the scenes of each segment (default: as montage chooses for ids 0, 1, …)."""
    spans = spans or segment_spans([str(index) for index in range(len(scenes))])
    segments = []
    for n, span in enumerate(spans):
        segment = workdir / f"segment-{n:04d}.mp4"
        encode_segment(scenes[span.start:span.stop], scenes[span.start - 1] if span.start else None,
                       width=width, height=height, fps=fps, pad=pad, speakers=speakers or {},
                       language=language, out=segment, workdir=workdir / f"segment-{n:04d}",
                       transition=transition)
        segments.append(segment)
    subtitles_out.write_text(video_captions(scenes, width=width, height=height, fps=fps, pad=pad,
                                            speakers=speakers or {}, language=language),
                             encoding="utf-8")
    return join_video(segments, scenes, fps=fps, pad=pad, music=music, loudness=loudness,
                      video_out=video_out, workdir=workdir)



def segments_changed(old, new, *edited: str) -> set[str]:
    """The ids of the segment nodes of `new` that an edit from `old` encodes again: those
    reading an `edited` scene, and those whose scenes (with the one before them) are not those
    of a segment of `old`. Boards: Storyboards or their JSON as dicts."""
    old_reads, new_reads = _reads(old), _reads(new)
    return {segment for segment, read in new_reads.items()
            if read not in old_reads.values() or set(read) & set(edited)}


def _reads(board) -> dict[str, tuple[str, ...]]:
    """Each segment node's id → the ids of the scenes it reads, in order."""
    from tasks.compose import segment_id, segments
    from tasks.storyboard import Storyboard

    board = board if isinstance(board, Storyboard) else Storyboard.model_validate(board)
    reads, before = {}, []
    for group in segments(board):
        reads[segment_id(group[0])] = tuple(scene.id for scene in before + group)
        before = group[-1:]
    return reads


def segments_reading(board, *scene_ids: str) -> set[str]:
    """The ids of the segment nodes that read any of `scene_ids` (a segment reads its own
    scenes and the one before them): what an edit of those scenes encodes again."""
    return {segment for segment, read in _reads(board).items() if set(read) & set(scene_ids)}
