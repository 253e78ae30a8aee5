"""What the voice is given to say for a line, and the written words its timings come back to.

A line is read as words: its runs of non-space characters, and within a script written without
spaces (Chinese, Japanese, Thai) the words a maintained segmenter finds. Each word keeps where it
is written in the line (captions show it as written) and has a spoken form, which the speech
provider gets, a space between two words, so that it reports a timing for each:
- emoji and other pictographs are shown but never said: they are left out of the spoken form;
- Japanese kanji are said as their kana where the provider cannot read kanji.
`written_timings` maps the provider's timings back onto the written words.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from tasks.providers.base import WordTiming
from tasks.writing import unspaced

# Marks that join an emoji sequence: zero width joiner, variation selectors, keycap, skin tones,
# tags (flags of regions).
EMOJI_JOINERS = re.compile("[\u200d\ufe0e\ufe0f\u20e3\U0001f3fb-\U0001f3ff\U000e0020-\U000e007f]")
KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
HAN = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff]")
THAI = re.compile("[\u0e00-\u0e7f]")


@dataclass(frozen=True)
class Word:
    first: int  # where it is written in the line: line[first:last]
    last: int
    spoken: str  # what the voice is given for it; empty: nothing (a line of emoji alone)


@dataclass(frozen=True)
class Reading:
    line: str
    words: tuple[Word, ...]

    @property
    def text(self) -> str:
        """What the speech provider is given: the spoken words, a space between two; nothing
        where they are punctuation alone ("…", "—"), which no voice says."""
        spoken = " ".join(word.spoken for word in self.words if word.spoken)
        return spoken if any(char.isalnum() for char in spoken) else ""


def read_line(line: str, language: str, reads_kanji: bool = True) -> Reading:
    """The words of `line` as written and as said, in `language` (which decides whether a line
    of Han characters alone is Japanese or Chinese), for a voice that reads kanji or not."""
    japanese = bool(KANA.search(line)) or language.split("-")[0].lower() == "ja"
    words: list[Word] = []
    opening = None  # what opens the line with nothing to say: said with the first word
    for word in _segments(line, japanese, reads_kanji):
        if not any(unicodedata.category(c)[0] not in "PZ" for c in word.spoken):
            # Punctuation, or an emoji (said as nothing): shown with the word before it.
            if words:
                words[-1] = _joined(words[-1], word)
            else:
                opening = word if opening is None else _joined(opening, word)
        elif opening is not None:
            words.append(_joined(opening, word))
            opening = None
        else:
            words.append(word)
    if opening is not None:  # nothing in the line is said
        words.append(opening)
    return Reading(line=line, words=tuple(words))


def _joined(word: Word, following: Word) -> Word:
    """Two neighbouring words as one; punctuation is said hugging its word (eSpeak says
    "night." as "night .", "5*" as "5 *")."""
    return Word(word.first, following.last, word.spoken + following.spoken)


def written_timings(reading: Reading, said: list[WordTiming]) -> list[WordTiming]:
    """The provider's timings of `reading.text` as timings of the written words.

    Matched by position in the text the provider was given, never by counting: a provider may
    time two words as one (eSpeak joins a word it says nothing for to its neighbour). Written
    words in one timing share it by the length of what is said of them; a written word no
    timing starts in is shown with the word before it (or after it, at the start).
    """
    if not said:
        return []
    text = reading.text
    located, cursor = [], 0  # (first character in `text`, end, timing) of each timing, in order
    for timing in said:
        at = text.find(timing.text, cursor)
        if at >= 0:
            located.append((at, at + len(timing.text), timing))
            cursor = at + len(timing.text)
    starts = [first for first, _, _ in located]
    groups: list[tuple[int, list[int]]] = []  # (its timing, the written words shown as one)
    opening: list[int] = []
    offset = 0  # where the word begins in `text`
    for index, word in enumerate(reading.words):
        owner = bisect.bisect_right(starts, offset) - 1
        if word.spoken and owner >= 0 and offset < located[owner][1]:
            groups.append((owner, opening + [index]))
            opening = []
        else:
            (groups[-1][1] if groups else opening).append(index)
        offset += len(word.spoken) + 1 if word.spoken else 0
    end = max(timing.end for timing in said)
    if not groups:  # no timing matched the text: the whole line is one word
        return [WordTiming(text=_written(reading, opening), start=said[0].start, end=end)]
    times = []
    for owner, shared in itertools.groupby(groups, key=lambda group: group[0]):
        timing = located[owner][2]
        lengths = [sum(len(reading.words[i].spoken) for i in members) for _, members in shared]
        times += [timing.start + (timing.end - timing.start) * sum(lengths[:n]) / sum(lengths)
                  for n in range(len(lengths))]
    for index in range(1, len(times)):  # ordered even where the provider's timings are not
        times[index] = max(times[index], times[index - 1])
    return [WordTiming(text=_written(reading, members), start=start, end=following)
            for (_, members), start, following in zip(groups, times, times[1:] + [max(end, times[-1])])]


def _written(reading: Reading, indexes: list[int]) -> str:
    """The written words `indexes`; with the space written before them where join_words would
    not put it back (between two Thai phrases)."""
    line, first = reading.line, reading.words[indexes[0]].first
    before = line[:first].rstrip()
    if before and len(before) < first and unspaced(before[-1]) and unspaced(line[first]):
        first = len(before)
    return line[first:reading.words[indexes[-1]].last]


def _segments(line: str, japanese: bool, reads_kanji: bool):
    """Each word of `line`: its runs of non-space characters, cut
    where the script passes between written with and without spaces, and runs of a script
    without spaces cut by its segmenter."""
    for token in re.finditer(r"\S+", line):
        position = token.start()
        for without_spaces, run in itertools.groupby(token[0], key=unspaced):
            run = "".join(run)
            pieces = _split(run, japanese, reads_kanji) if without_spaces else [(run, run)]
            for written, spoken in pieces:
                yield Word(position, position + len(written), _unpictured(spoken))
                position += len(written)


def _split(run: str, japanese: bool, reads_kanji: bool) -> list[tuple[str, str]]:
    """The words of `run` (a script written without spaces), each as written and as said."""
    if THAI.search(run):
        pieces = [(word, word) for word in _thai()(run, keep_whitespace=False)]
    elif japanese and (HAN.search(run) or KANA.search(run)):
        pieces = [(item["orig"], item["orig"] if reads_kanji or not HAN.search(item["orig"])
                   else item["hira"]) for item in _japanese().convert(run)]
    elif HAN.search(run):
        pieces = [(word, word) for word in _chinese()(run)]
    else:  # Lao, Khmer, Burmese (no segmenter here), or punctuation alone
        pieces = []
    return pieces if "".join(written for written, _ in pieces) == run else [(run, run)]


def _unpictured(text: str) -> str:
    """`text` without emoji and other pictographs, which have nothing to say."""
    return " ".join("".join(" " if _pictograph(c) else c for c in text).split())


def _pictograph(char: str) -> bool:
    """Emoji, dingbats and other symbols from the arrows on (below them are symbols a voice
    reads: ©, °, ™, №), and the marks that join them into one emoji."""
    return bool(EMOJI_JOINERS.match(char)) or (
        unicodedata.category(char) == "So" and ord(char) >= 0x2190)


# The segmenters load their dictionaries (a second or two each) only when a line needs them.
@cache
def _chinese():
    import jieba

    jieba.setLogLevel(logging.WARNING)  # it announces building its dictionary on stderr
    return jieba.lcut


@cache
def _japanese():
    import pykakasi

    return pykakasi.kakasi()


@cache
def _thai():
    from pythainlp.tokenize import word_tokenize

    return word_tokenize
