"""How text is written: which characters belong to scripts that put no spaces between words
(Chinese, Japanese, Thai, Lao, Khmer, Burmese), so that words split from such a line are joined
back as they were written, in captions as in the script."""

from __future__ import annotations

from collections.abc import Iterable

# Code point ranges of those scripts, with their punctuation and full-width forms.
UNSPACED_RANGES = [
    (0x0E00, 0x0EFF),  # Thai, Lao
    (0x1000, 0x109F),  # Myanmar
    (0x1780, 0x17FF),  # Khmer
    (0x3000, 0x30FF),  # CJK punctuation, Hiragana, Katakana
    (0x3400, 0x4DBF),  # CJK Unified Ideographs Extension A
    (0x4E00, 0x9FFF),  # CJK Unified Ideographs
    (0xF900, 0xFAFF),  # CJK Compatibility Ideographs
    (0xFF00, 0xFFEF),  # Half-width and full-width forms
    (0x20000, 0x3FFFF),  # CJK Unified Ideographs Extension B and later
]


def unspaced(char: str) -> bool:
    """Whether `char` belongs to a script written without spaces between words."""
    point = ord(char)
    return any(low <= point <= high for low, high in UNSPACED_RANGES)


def join_words(words: Iterable[str]) -> str:
    """Words as one line. A word that keeps the space written before it (Thai puts spaces
    between phrases, not words) brings it; otherwise a space goes between two words, except
    where both sides of the join are of a script written without spaces."""
    line = ""
    for word in words:
        if line and word and not word[0].isspace() and not (unspaced(line[-1])
                                                            and unspaced(word[0])):
            line += " "
        line += word
    return line
