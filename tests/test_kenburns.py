from pathlib import Path

import pytest
from PIL import Image, ImageChops, ImageDraw, ImageStat

from tasks.cards import text_zone
from tasks.ffmpeg import MediaError, count_frames, probe, run_ffmpeg
from tasks.providers.base import ClipRequest
from tasks.providers.kenburns import KenBurnsAnimator
from tasks.storyboard import Aspect, CameraMotion
from tasks.subtitles import caption_top

WIDTH, HEIGHT, FPS, DURATION = 180, 320, 24, 1.3
FRAMES = round(DURATION * FPS)


@pytest.fixture
def keyframe(tmp_path) -> Path:
    """A gradient with a grid of dots: detail everywhere, so any motion changes the frame."""
    image = Image.merge("RGB", [
        Image.linear_gradient("L").resize((WIDTH, HEIGHT)),
        Image.linear_gradient("L").rotate(90).resize((WIDTH, HEIGHT)),
        Image.new("L", (WIDTH, HEIGHT), 128),
    ])
    draw = ImageDraw.Draw(image)
    for x in range(10, WIDTH, 30):
        for y in range(10, HEIGHT, 30):
            draw.ellipse((x, y, x + 8, y + 8), fill="white")
    path = tmp_path / "keyframe.png"
    image.save(path)
    return path


def _animate(keyframe: Path, motion: CameraMotion, workdir: Path):
    workdir.mkdir()
    request = ClipRequest(image=keyframe, motion=motion, duration=DURATION, width=WIDTH,
                          height=HEIGHT, fps=FPS, aspect=Aspect.portrait)
    return KenBurnsAnimator().animate(request, workdir)


def _first_and_last_frames(video: Path, folder: Path) -> tuple[Image.Image, Image.Image]:
    folder.mkdir()
    run_ffmpeg(["-i", str(video), str(folder / "%03d.png")], what="extract frames")
    frames = sorted(folder.glob("*.png"))
    return Image.open(frames[0]).convert("RGB"), Image.open(frames[-1]).convert("RGB")


def _mean_difference(first: Image.Image, last: Image.Image) -> float:
    return sum(ImageStat.Stat(ImageChops.difference(first, last)).mean) / 3


@pytest.mark.parametrize("motion", list(CameraMotion))
def test_each_motion_gives_a_silent_clip_of_the_requested_shape(keyframe, tmp_path, motion):
    result = _animate(keyframe, motion, tmp_path / "work")
    info = probe(result.video)
    assert result.video == tmp_path / "work" / "clip.mp4"
    assert (info.has_video, info.video_codec, info.width, info.height) == (
        True, "h264", WIDTH, HEIGHT)
    assert info.fps == FPS
    assert abs(info.duration - DURATION) <= 1 / FPS
    assert count_frames(result.video) == FRAMES
    assert not info.has_audio
    assert result.usage.video_seconds == DURATION


@pytest.mark.parametrize("motion", [m for m in CameraMotion if m is not CameraMotion.static])
def test_each_moving_camera_changes_the_picture_from_first_to_last_frame(
    keyframe, tmp_path, motion
):
    result = _animate(keyframe, motion, tmp_path / "work")
    first, last = _first_and_last_frames(result.video, tmp_path / "frames")
    assert _mean_difference(first, last) > 10  # moving here measures 20-30 of 255


def test_static_camera_keeps_the_picture_still(keyframe, tmp_path):
    result = _animate(keyframe, CameraMotion.static, tmp_path / "work")
    first, last = _first_and_last_frames(result.video, tmp_path / "frames")
    assert _mean_difference(first, last) < 2  # what is left is the encoder's noise


def test_unreadable_keyframe_raises_media_error(tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    with pytest.raises(MediaError):
        _animate(broken, CameraMotion.zoom_in, tmp_path / "work")


def _bar_positions(video: Path, folder: Path, row: int, across: bool) -> list[float]:
    """The bright bar's centre in every frame, along the pan's axis, to a fraction of a pixel."""
    folder.mkdir()
    run_ffmpeg(["-i", str(video), str(folder / "%03d.png")], what="extract frames")
    positions = []
    for path in sorted(folder.glob("*.png")):
        gray = Image.open(path).convert("L")
        line = [gray.getpixel((i, row) if across else (row, i))
                for i in range(gray.width if across else gray.height)]
        weights = [max(value - 64, 0) for value in line]  # ignore the dark background
        positions.append(sum(i * w for i, w in enumerate(weights)) / sum(weights))
    return positions


@pytest.mark.parametrize("motion, across", [(CameraMotion.pan_right, True),
                                             (CameraMotion.pan_up, False)])
def test_pans_move_the_same_distance_every_frame(tmp_path, motion, across):
    image = Image.new("RGB", (WIDTH, HEIGHT), "black")
    bar = (WIDTH // 2 - 3, 0, WIDTH // 2 + 3, HEIGHT) if across else (0, HEIGHT // 2 - 3, WIDTH, HEIGHT // 2 + 3)
    ImageDraw.Draw(image).rectangle(bar, fill="white")
    image.save(tmp_path / "bar.png")
    result = _animate(tmp_path / "bar.png", motion, tmp_path / "work")

    positions = _bar_positions(result.video, tmp_path / "frames", HEIGHT // 2 if across else WIDTH // 2, across)
    steps = [b - a for a, b in zip(positions, positions[1:])]
    assert abs(positions[-1] - positions[0]) > 10  # it moved
    assert max(steps) - min(steps) < 0.25  # and by the same amount each frame: no stutter


@pytest.mark.parametrize("frames", [11, 36, 72])  # a step rounded down; 1 px a frame; too long
@pytest.mark.parametrize("motion", list(CameraMotion))
def test_no_move_carries_the_text_zone_off_screen_or_into_the_captions(tmp_path, motion, frames):
    """The card's text zone, drawn white on black, stays clear of the frame's edges and of the
    captions in every frame of every move, however long."""
    zone = Image.new("L", (WIDTH, HEIGHT), 0)
    ImageDraw.Draw(zone).rectangle([round(v) for v in text_zone(WIDTH, HEIGHT)], fill=255)
    zone.save(tmp_path / "zone.png")
    (tmp_path / "work").mkdir()
    request = ClipRequest(image=tmp_path / "zone.png", motion=motion, duration=frames / FPS,
                          width=WIDTH, height=HEIGHT, fps=FPS, aspect=Aspect.portrait)
    video = KenBurnsAnimator().animate(request, tmp_path / "work").video
    (tmp_path / "frames").mkdir()
    run_ffmpeg(["-i", str(video), str(tmp_path / "frames" / "%03d.png")], what="extract frames")
    # The margins text_zone keeps (5% across, 6% down), less 2 px of filtering and encoding.
    side, top = round(0.05 * WIDTH) - 2, round(0.06 * HEIGHT) - 2
    bottom = caption_top(WIDTH, HEIGHT) + 2
    for path in sorted((tmp_path / "frames").glob("*.png")):
        frame = Image.open(path).convert("L")
        for box in [(0, 0, side, HEIGHT), (WIDTH - side, 0, WIDTH, HEIGHT), (0, 0, WIDTH, top),
                    (0, bottom, WIDTH, HEIGHT)]:
            assert frame.crop(box).getextrema()[1] < 64, f"{path.name}: text reaches {box}"
