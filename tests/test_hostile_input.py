"""Hostile input: arbitrary unicode, path tricks, tag and filter syntax, oversized fields.

User text is either refused with a pydantic ValidationError or kept literally (whitespace folded);
it never steers a path, never becomes an ASS override tag, and never crashes a render.
Every property runs derandomized, so CI sees the same examples on every run.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import unicodedata
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from tasks.publish import folder_name
from tasks.storyboard import Storyboard, VideoRequest
from tasks.subtitles import LINE_BREAKS, escape_text

REELFLOW = str(Path(sys.executable).parent / "reelflow")
ZWJ = "\u200d"

# Characters that have broken text handling somewhere: RTL and bidi controls, emoji and ZWJ
# sequences, combining marks, NUL and other controls, lone surrogates, exotic line breaks.
NASTY = [
    "\u05e9", "\u0645", "\u202e", "\u200f", "\u2066", "\U0001f3ac", "\U0001f469", ZWJ,
    "\ufe0f", "\u0301", "\u0308", "\u20dd", "\x00", "\x07", "\x1b", "\x7f", "\x85", "\x9b",
    "\ud800", "\udfff", "\udcff", "\ufeff", "\u200b", "\u2028", "\u2029", "\u3000", "\xa0",
    "\t", "\n", "\r", "\v", "\f", "\ue000", "\U0010fffd", "\ufffd", "\\", "{", "}", "/", ".",
    " ", "a", "Z", "0",
]
ANY_CHAR = st.one_of(st.sampled_from(NASTY), st.characters(exclude_categories=()))
HOSTILE_TEXT = st.text(ANY_CHAR, max_size=60)
PROPERTY = settings(derandomize=True, database=None, max_examples=300, deadline=None)


def _fold(text: str) -> str:
    return " ".join(text.split())


def _board(title: str = "T", text: str = "Hello.", name: str = "Ann") -> dict:
    return {
        "title": title,
        "characters": [{"id": "ann", "name": name}],
        "scenes": [{"id": "s001", "order": 0, "lines": [{"text": text}, {"speaker": "ann",
                                                                         "text": "Hi."}],
                    "visual_prompt": "sky", "duration": 3}],
    }


def _validate_or_refuse(model, data: dict):
    """The model, or None when pydantic refused it; any other exception fails the test."""
    try:
        return model.model_validate(data)
    except ValidationError:
        return None


# (1) Validation: accept literally (whitespace folded) or raise ValidationError, nothing else.

@PROPERTY
@given(HOSTILE_TEXT)
@example("\x00")
@example("\ud800 lone surrogate")
@example("\u202eevil\u202c \U0001f469\u200d\U0001f467 e\u0301")
@example(" \u2028\u3000 ")
def test_request_topic_is_kept_literally_or_refused_by_validation(text):
    request = _validate_or_refuse(VideoRequest, {"topic": text})
    event("refused" if request is None else "accepted")
    if request is not None:
        assert request.topic == _fold(text)


@PROPERTY
@given(title=HOSTILE_TEXT, text=HOSTILE_TEXT, name=HOSTILE_TEXT)
@example(title="../../etc/passwd", text="{\\pos(0,0)}\x00", name="\ud800")
def test_storyboard_text_fields_are_kept_literally_or_refused_by_validation(title, text, name):
    board = _validate_or_refuse(Storyboard, _board(title, text, name))
    event("refused" if board is None else "accepted")
    if board is not None:
        assert board.title == _fold(title)
        assert board.scenes[0].lines[0].text == _fold(text)
        assert board.characters[0].name == _fold(name)


@PROPERTY
@given(HOSTILE_TEXT)
@example("\ud800")
@example("\x00")
def test_storyboard_json_with_any_text_is_kept_literally_or_refused_by_validation(text):
    """The CLI path: JSON text (lone surrogates arrive as \\ud800 escapes) into the contract."""
    raw = json.dumps(_board(title=text, text=text))
    try:
        board = Storyboard.model_validate_json(raw)
    except ValidationError:
        event("refused")
        return
    event("accepted")
    assert board.title == _fold(text) and board.scenes[0].lines[0].text == _fold(text)


# (2) escape_text: no override block can start, no \N \n \h can form, and it is reversible.

def _unescape(escaped: str) -> str:
    """Parse escaped dialogue text as libass would; fail on anything libass would interpret."""
    out, i = [], 0
    while i < len(escaped):
        char = escaped[i]
        assert char not in "{}", f"unescaped {char!r} at {i} in {escaped!r}"
        assert char not in "\r\n", f"line break at {i} in {escaped!r}"
        if char == "\\":
            following = escaped[i + 1:i + 2]
            assert following in (ZWJ, "{", "}"), f"bare backslash at {i} in {escaped!r}"
            out.append("\\" if following == ZWJ else following)
            i += 2
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _shown(text: str) -> str:
    """What libass should show for `text`: line breaks as spaces, invisible controls dropped."""
    return "".join(" " if c in LINE_BREAKS else c for c in text
                   if c in LINE_BREAKS or unicodedata.category(c) not in ("Cc", "Cs"))


TAGGY_TEXT = st.text(st.one_of(st.sampled_from(["\\", "{", "}", "N", "n", "h", ZWJ, "\n", "k"]),
                               ANY_CHAR), max_size=80)


@settings(derandomize=True, database=None, max_examples=1000, deadline=None)
@given(TAGGY_TEXT)
@example("{\\pos(0,0)}x{\\an8}")
@example("\\N\\n\\h\\\\N")
@example("\\{\\}")
@example("\\\u200d{")
@example("}{")
def test_escaped_text_never_opens_an_override_block_or_forms_an_escape(text):
    escaped = escape_text(text)
    assert _unescape(escaped) == _shown(text)


# (3) folder_name: only [a-z0-9-] and the digest, whatever the title.

FOLDER = re.compile(r"[a-z0-9-]+-[0-9a-f]{12}")
TITLES = st.one_of(
    HOSTILE_TEXT,
    st.lists(st.sampled_from(["..", "/", "\\", "etc", "passwd", "~", ".", "C:", "%2e%2e",
                              "\x00", "\u2215", "\uff0f", "\u202e", "\U0001f3ac", "\u00c5"]),
             max_size=20).map("".join),
    st.text(max_size=300),
)


@PROPERTY
@given(title=TITLES, digest=st.text("0123456789abcdef", min_size=64, max_size=64))
@example(title="../../../etc/passwd", digest="a" * 64)
@example(title="/etc/passwd", digest="b" * 64)
@example(title="..", digest="c" * 64)
@example(title="a/b\\c", digest="d" * 64)
@example(title="\u202e\U0001f3ac", digest="e" * 64)
def test_folder_name_is_a_safe_slug_and_digest_for_any_title(title, digest):
    board = _validate_or_refuse(Storyboard, _board(title=title))
    if board is None:  # folder_name must be safe even for a title that skipped validation
        board = Storyboard.model_construct(**{**_board(), "title": title})
    name = folder_name(board, digest)
    assert FOLDER.fullmatch(name), name
    assert name.endswith("-" + digest[:12])
    out = Path("/srv/out")
    assert (out / name).resolve().parent == out


# (4) A fixed corpus through the CLI: exit 2 naming the field, nothing written anywhere.

def _scene(**changes) -> dict:
    return {"id": "s001", "order": 0, "lines": [{"text": "Hello."}], "visual_prompt": "sky",
            "duration": 3, **changes}


def _storyboard_json(scenes=None, **changes) -> str:
    return json.dumps({"title": "T", "scenes": scenes or [_scene()], **changes})


PATH_TRICKS = ["../", "/etc/passwd", "a/b", ".."]
TRICK_FIELDS = {  # where a path trick goes, and the field the one error line must name
    "scene id": (lambda t: ["render", "-"], lambda t: _storyboard_json([_scene(id=t)]),
                 "storyboard.scenes.0.id"),
    "character id": (lambda t: ["render", "-"],
                     lambda t: _storyboard_json(characters=[{"id": t, "name": "A"}]),
                     "storyboard.characters.0.id"),
    "speaker": (lambda t: ["render", "-"],
                lambda t: _storyboard_json([_scene(lines=[{"speaker": t, "text": "x"}])]),
                "storyboard.scenes.0.lines.0.speaker"),
    "character voice": (lambda t: ["render", "-"],
                        lambda t: _storyboard_json(characters=[{"id": "a", "name": "A",
                                                                "voice": t}]),
                        "storyboard.characters.0.voice"),
    "storyboard style": (lambda t: ["render", "-"], lambda t: _storyboard_json(style=t),
                         "storyboard.style"),
    "storyboard voice": (lambda t: ["render", "-"], lambda t: _storyboard_json(voice=t),
                         "storyboard.voice"),
    "--style": (lambda t: ["make", "bees", "--style", t], lambda t: None, "style"),
    "--voice": (lambda t: ["make", "bees", "--voice", t], lambda t: None, "voice"),
    "--language": (lambda t: ["make", "bees", "--language", t], lambda t: None, "language"),
}
OVERSIZED = {
    "10k-char topic": (["make", "x" * 10_000], None, "topic"),
    "10k-char title": (["render", "-"], _storyboard_json(title="t" * 10_000), "storyboard.title"),
    "2k-char narration line": (["render", "-"],
                               _storyboard_json([_scene(lines=[{"text": "w" * 2_000}])]),
                               "storyboard.scenes.0.lines.0.text"),
    "51 lines in a scene": (["render", "-"], _storyboard_json([_scene(lines=[{"text": "x"}] * 51)]),
                            "storyboard.scenes.0.lines"),
    "51 characters": (["render", "-"], _storyboard_json(characters=[{"id": f"c{i}", "name": "A"}
                                                                    for i in range(51)]),
                      "storyboard.characters"),
}
CONTROLS = {
    "NUL in narration": (["render", "-"], _storyboard_json([_scene(lines=[{"text": "a\x00b"}])]),
                         "storyboard.scenes.0.lines.0.text"),
    # pydantic's JSON parser refuses a lone surrogate escape before any field is read
    "lone surrogate in title": (["render", "-"], _storyboard_json(title="\ud800"), "storyboard"),
    "terminal escape in topic": (["plan", "bees\x1b[31m"], None, "topic"),
    "invalid UTF-8 in topic": (["plan", "bees\udcff"], None, "topic"),
}


def _tree(root: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(root.rglob("*"))}


def _refusals(runs: list[tuple[list[str], str | None]], env: dict,
              tmp_path: Path) -> list[subprocess.CompletedProcess]:
    """Run each `reelflow` command at once (each from its own empty folder) and check that
    nothing at all was written under tmp_path, which holds the store and output roots."""
    cwds = [tmp_path / f"cwd{i}" for i in range(len(runs))]
    for cwd in cwds:
        cwd.mkdir()
    before = _tree(tmp_path)
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(
            lambda run, cwd: subprocess.run([REELFLOW, *run[0]], input=run[1],
                                            capture_output=True, text=True, env=env, cwd=cwd,
                                            timeout=120),
            runs, cwds))
    assert _tree(tmp_path) == before
    return results


def _assert_refused(result: subprocess.CompletedProcess, field: str) -> None:
    assert result.returncode == 2, (result.args, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: {field}"), (result.args, result.stderr)
    assert result.stdout == ""


@pytest.mark.parametrize("where", sorted(TRICK_FIELDS))
@pytest.mark.parametrize("trick", PATH_TRICKS)
def test_path_tricks_in_ids_styles_and_voices_fail_validation_on_that_field(where, trick):
    """Every trick in every field, in process (cheap); the CLI runs below sample this matrix."""
    args, stdin, field = TRICK_FIELDS[where]
    try:
        if stdin(trick) is None:
            option = args(trick)[2].removeprefix("--")
            VideoRequest(topic="bees", **{option: trick})
        else:
            Storyboard.model_validate_json(stdin(trick))
    except ValidationError as error:
        loc = ".".join(str(part) for part in ("storyboard", *error.errors()[0]["loc"]))
        assert loc.removeprefix("storyboard.") == field.removeprefix("storyboard.")
    else:
        pytest.fail(f"{trick!r} accepted as {where}")


def test_path_tricks_through_the_cli_are_refused_naming_the_field_and_write_nothing(
        cli_env, workspace, tmp_path):
    """Every trick as a scene id, and each other field with one trick (cycling through all)."""
    cases = [("scene id", trick) for trick in PATH_TRICKS]
    others = sorted(set(TRICK_FIELDS) - {"scene id"})
    cases += [(where, PATH_TRICKS[i % len(PATH_TRICKS)]) for i, where in enumerate(others)]
    runs = [(TRICK_FIELDS[where][0](trick), TRICK_FIELDS[where][1](trick))
            for where, trick in cases]
    for (where, _), result in zip(cases, _refusals(runs, cli_env, tmp_path)):
        _assert_refused(result, TRICK_FIELDS[where][2])


@pytest.mark.parametrize("cases", [OVERSIZED, CONTROLS], ids=["oversized", "controls"])
def test_oversized_and_control_character_input_is_refused_naming_the_field_and_writes_nothing(
        cases, cli_env, workspace, tmp_path):
    names = sorted(cases)
    results = _refusals([cases[name][:2] for name in names], cli_env, tmp_path)
    for name, result in zip(names, results):
        _assert_refused(result, cases[name][2])


# (5) Real renders, tiny: hostile narration is captioned literally or refused, never a crash.

NARRATION_PIECES = ["{\\pos(0,0)}", "{\\an8}", "\\", "\\N", "\\h", "[0:v]scale=2:2;", "'", '"',
                    "%", "%{pts}", "\n", ":", ",", "שלום", "مرحبا", "\u202e", "\U0001f3ac",
                    "\U0001f469\u200d\U0001f467", "e\u0301", "{", "}", " ", "hi", "Bee."]
NARRATIONS = st.lists(st.sampled_from(NARRATION_PIECES), min_size=1, max_size=12).map("".join)


@pytest.fixture
def tiny(workspace, monkeypatch):
    monkeypatch.setenv("REELFLOW_SHORT_SIDE", "120")
    monkeypatch.setenv("REELFLOW_FPS", "8")
    return workspace


def _syllables(event: str) -> list[str]:
    """A caption line's karaoke syllables, without the font runs' `\\fn` overrides and the
    mark that may set the line's direction."""
    event = re.sub(r"\\fn[^\\{}]+(?=[\\}])", "", event).replace("{}", "").lstrip("\u200e\u200f")
    return re.split(r"\{\\kf?\d+\}", event)


@pytest.mark.usefixtures("prefect_api_url")
@settings(derandomize=True, database=None, max_examples=4, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(NARRATIONS)
@example("{\\pos(0,0)}Hi [0:v]scale=2:2;[x] it's 100% {\\an8}done\\N \u05e9\u05dc\u05d5\u05dd "
         "\U0001f3ac\n\"q\"")
def test_hostile_narration_renders_with_literal_captions_or_fails_validation(tiny, narration):
    """Captions unescape back to the (folded) narration; a failed render would raise here."""
    from flows.video import render_storyboard

    board = _validate_or_refuse(Storyboard, {
        "title": narration, "scenes": [{"id": "s001", "order": 0, "lines": [{"text": narration}],
                                        "visual_prompt": narration, "duration": 1.5}]})
    if board is None:
        event("refused by validation")
        return
    event("rendered")
    summary = render_storyboard(board)
    assert summary.video.parent.parent == tiny["out"]
    assert FOLDER.fullmatch(summary.video.parent.name)

    ass = (summary.video.parent / "subtitles.ass").read_text(encoding="utf-8")
    events = [line.split(",", 9)[9] for line in ass.splitlines() if line.startswith("Dialogue:")]
    assert all("\r" not in event for event in events)
    words = [_unescape(part) for event in events for part in _syllables(event) if part]
    assert " ".join(w.strip() for w in words) == board.scenes[0].lines[0].text


def test_silent_leading_punctuation_before_a_long_word_stays_in_the_captions():
    """Found by the render property (unseeded soak): '" שלום[0:v]scale=2:2;…' lost its quote."""
    from tasks.providers.base import SpeechRequest
    from tasks.providers.espeak import EspeakSpeech
    from tasks.subtitles import SceneWords, karaoke_ass

    narration = "' " + "abracadabra" * 4
    words = EspeakSpeech().synthesize(SpeechRequest(text=narration, voice="en-us",
                                                    language="en")).words
    ass = karaoke_ass([SceneWords(0, 5, words)], width=120, height=212)
    events = [line.split(",", 9)[9] for line in ass.splitlines() if line.startswith("Dialogue:")]
    parts = [_unescape(part).strip() for event in events for part in _syllables(event) if part]
    assert " ".join(parts) == narration
