"""Karaoke captions: the ASS text, and what real libass draws from it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tasks.ffmpeg import run_ffmpeg
from tasks.providers.base import WordTiming
from tasks.subtitles import SceneWords, Turn, burn_filter, escape_text, karaoke_ass

WIDTH, HEIGHT = 180, 320
BACKGROUND = (0x20, 0x20, 0x40)
# Our override blocks: a word's karaoke length and the font family of the run that follows.
TAGS = re.compile(r"\{(?:\\k\d+|\\fn[^\\{}]+)+\}")
HOSTILE = ["{\\pos(0,0)}", "{\\an8}x", "\\N", "[0:v]nullsink;", "'quoted\"", "a:b,c%",
           "line\nbreak", "\\h\\{", "שלום", "😀"]


def words(*texts: str, step: float = 0.5) -> list[WordTiming]:
    return [WordTiming(text=t, start=i * step, end=i * step + step * 0.8)
            for i, t in enumerate(texts)]


def karaoke(text: str) -> list[int]:
    return [int(k) for block in TAGS.findall(text) for k in re.findall(r"\\k(\d+)", block)]


def dialogues(ass: str) -> list[tuple[float, float, str]]:
    events = []
    for line in ass.splitlines():
        if line.startswith("Dialogue:"):
            _, start, end, *_, text = line.split(",", 9)
            events.append((clock(start), clock(end), text))
    return events


def clock(value: str) -> float:
    hours, minutes, seconds = value.split(":")
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def render(ass: str, tmp_path: Path, at: float, name: str = "frame") -> bytes:
    """Draw `ass` with libass on a plain background; the frame at `at` seconds, as RGB bytes."""
    ass_path = tmp_path / f"{name}.ass"
    ass_path.write_text(ass, encoding="utf-8")
    out = tmp_path / f"{name}.rgb"
    color = "0x{:02x}{:02x}{:02x}".format(*BACKGROUND)
    run_ffmpeg(["-f", "lavfi", "-i", f"color=c={color}:s={WIDTH}x{HEIGHT}:r=10:d={at + 1}",
                "-vf", burn_filter(ass_path), "-ss", f"{at}", "-frames:v", "1",
                "-f", "rawvideo", "-pix_fmt", "rgb24", str(out)], what="render captions")
    return out.read_bytes()


def pixels(frame: bytes, top: int = 0, bottom: int = HEIGHT):
    for offset in range(top * WIDTH * 3, bottom * WIDTH * 3, 3):
        yield frame[offset], frame[offset + 1], frame[offset + 2]


def yellow(frame: bytes) -> int:
    return sum(r > 180 and g > 180 and b < r - 80 for r, g, b in pixels(frame))


def white(frame: bytes) -> int:
    return sum(r > 180 and g > 180 and b > 180 for r, g, b in pixels(frame))


def single_caption(text: str) -> str:
    scene = SceneWords(0.0, 5.0, [WordTiming(text=text, start=0.0, end=3.0)])
    return karaoke_ass([scene], width=WIDTH, height=HEIGHT)


def test_every_word_gets_one_karaoke_tag_timed_from_its_start():
    scene = SceneWords(2.0, 4.0, [WordTiming(text="Hello", start=0.1, end=0.5),
                                  WordTiming(text="big", start=0.8, end=1.0),
                                  WordTiming(text="world", start=1.2, end=1.9)])
    (start, end, text), = dialogues(karaoke_ass([scene], width=WIDTH, height=HEIGHT))
    assert (start, end) == pytest.approx((2.0, 6.0))  # the whole scene
    # An empty syllable until "Hello" is spoken; each tag lasts until the next word starts, so
    # the gaps are counted in.
    assert karaoke(text) == [10, 70, 40, 70]
    assert TAGS.sub("", text) == "Hello big world"


def test_captions_break_at_sentence_ends_and_after_six_words():
    texts = ["One", "two.", "Three", "four", "five", "six", "seven", "eight", "nine", "ten!"]
    ass = karaoke_ass([SceneWords(0.0, 10.0, words(*texts))], width=WIDTH, height=HEIGHT)
    lines = [TAGS.sub("", text) for _, _, text in dialogues(ass)]
    assert lines == ["One two.", "Three four five six seven eight", "nine ten!"]


def test_long_words_break_before_thirty_two_characters():
    texts = ["extraordinarily", "uncharacteristically", "long", "words"]
    ass = karaoke_ass([SceneWords(0.0, 5.0, words(*texts))], width=WIDTH, height=HEIGHT)
    lines = [TAGS.sub("", text) for _, _, text in dialogues(ass)]
    assert lines == ["extraordinarily", "uncharacteristically long words"]


def test_a_line_that_shares_its_instant_with_the_next_is_shown_with_it():
    """A provider that gives seven words one time (or a sentence end and the next word the
    same centisecond) leaves a first line with no time of its own: its words join the next
    line instead of vanishing."""
    texts = ["One.", "two", "three", "four", "five", "six", "seven"]
    same = [WordTiming(text=t, start=1.0 + max(0, i - 1) * 0.4, end=1.0 + i * 0.4)
            for i, t in enumerate(texts)]  # "One." and "two" start together
    for timings in (same, [WordTiming(text=t, start=0.5, end=0.5) for t in texts]):
        events = dialogues(karaoke_ass([SceneWords(0.0, 5.0, timings)], width=WIDTH,
                                       height=HEIGHT))
        shown = " ".join(TAGS.sub("", text) for _, _, text in events)
        assert shown.split() == texts, events
        assert all(end > start for start, end, _ in events)


def test_captions_never_span_scenes_and_stay_inside_them():
    scenes = [SceneWords(0.0, 2.0, words("a", "b", "c", step=0.6)),  # its hold would pass 2 s
              SceneWords(2.0, 3.0, words("d", "e"))]
    events = dialogues(karaoke_ass(scenes, width=WIDTH, height=HEIGHT))
    assert [TAGS.sub("", text) for _, _, text in events] == ["a b c", "d e"]
    assert events[0][0] >= 0 and events[0][1] <= 2.0
    assert events[1][0] >= 2.0 and events[1][1] <= 5.0
    assert all(sum(karaoke(text)) / 100 <= end - start + 1e-9
               for start, end, text in events)


def uncovered(events: list[tuple[float, float, str]], start: float, end: float) -> float:
    """The longest stretch of [start, end] with no caption on screen."""
    longest, reached = 0.0, start
    for shown, hidden, _ in sorted(events):
        longest, reached = max(longest, shown - reached), max(reached, hidden)
    return max(longest, end - reached)


def test_captions_cover_each_scene_from_its_start_to_its_end_across_lines_and_scenes(tmp_path):
    """Words with pauses between them, a sentence end, two speakers' lines and a first word
    spoken after a moment of quiet: a caption is on screen all the time, and the first word is
    still highlighted only when it is spoken."""
    narrator = [WordTiming(text=t, start=0.3 + i * 0.6, end=0.6 + i * 0.6)
                for i, t in enumerate(["Quiet", "first.", "Then", "more", "words"])]
    dialogue = [WordTiming(text=t, start=start, end=end) for t, start, end in [
        ("Ada", 0.0, 0.4), ("speaks.", 0.5, 1.0), ("Bo", 1.6, 2.0), ("answers.", 2.1, 2.6)]]
    scenes = [SceneWords(0.0, 3.5, narrator),
              SceneWords(3.5, 3.1, dialogue, [Turn("ada", 0, 0.0, 1.0), Turn("bo", 2, 1.6, 2.6)])]
    ass = karaoke_ass(scenes, width=WIDTH, height=HEIGHT)
    events = dialogues(ass)

    assert uncovered(events, 0.0, 6.6) == 0
    assert all(start >= 0 and end <= 3.5 or start >= 3.5 and end <= 6.6
               for start, end, _ in events)
    assert karaoke(events[0][2])[0] == 30  # quiet until "Quiet" at 0.3 s
    before, spoken = render(ass, tmp_path, 0.1, "before"), render(ass, tmp_path, 0.45, "spoken")
    assert white(before) > 0 and yellow(before) == 0 and yellow(spoken) > 0


def test_hostile_text_is_escaped_and_cannot_open_a_tag():
    ass = karaoke_ass([SceneWords(0.0, 20.0, words(*HOSTILE, step=0.2))],
                      width=WIDTH, height=HEIGHT)
    events = dialogues(ass)
    # The newline inside a word did not end its Dialogue line early.
    assert all(line.startswith("Dialogue:") for line in ass.split("[Events]")[1].splitlines()[2:])
    text = "".join(TAGS.sub("", t) for _, _, t in events)
    assert len(karaoke("".join(t for _, _, t in events))) == len(HOSTILE)
    assert "\\{\\\u200dpos(0,0)\\}" in text and "\\{\\\u200dan8\\}x" in text
    for literal in ["[0:v]nullsink;", "'quoted\"", "a:b,c%", "שלום", "😀"]:
        assert literal in text
    assert re.search(r"(?<!\\)[{}]", text) is None  # every brace is escaped
    assert re.search(r"\\(?![{}\u200d])", text) is None  # no backslash can start an escape


def test_escaped_text_renders_exactly_like_the_characters_typed_where_libass_ignores_them(
        tmp_path):
    # libass reads `\b`, a lone `{` and a lone `}` literally: escaping must not change a pixel.
    for literal in ["a\\b", "{ab", "ab}"]:
        placeholder = single_caption("PLACEHOLDER")
        raw = placeholder.replace("PLACEHOLDER", literal)
        escaped = placeholder.replace("PLACEHOLDER", escape_text(literal))
        assert raw != escaped
        assert render(raw, tmp_path, 1.0, "raw") == render(escaped, tmp_path, 1.0, "escaped")


def test_karaoke_highlight_follows_the_spoken_word(tmp_path):
    ass = karaoke_ass([SceneWords(0.0, 4.0, words("wait", "for", "it", step=1.0))],
                      width=WIDTH, height=HEIGHT)
    first = render(ass, tmp_path, 0.5, "first")
    last = render(ass, tmp_path, 2.5, "last")
    assert yellow(first) > 0 and white(first) > 0  # "wait" spoken, "for it" still to come
    assert yellow(last) > 1.5 * yellow(first) and white(last) < white(first) / 4


def test_hostile_text_renders_and_the_caption_stays_at_the_bottom(tmp_path):
    plain = render(single_caption("plain"), tmp_path, 1.0, "plain")
    for hostile in HOSTILE:
        frame = render(single_caption(hostile), tmp_path, 1.0, "hostile")
        half = WIDTH * 3 * HEIGHT // 2
        assert frame[:half] == plain[:half], hostile  # nothing moved into the top half
        assert frame[half:] != plain[half:], hostile  # and something was drawn below
    unescaped = single_caption("x").replace("}x", "}{\\an8}x")
    assert render(unescaped, tmp_path, 1.0, "tag")[:half] != plain[:half]  # the check can fail
