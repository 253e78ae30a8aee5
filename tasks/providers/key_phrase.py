"""A scene's key phrase, picked from its narration without a language model, in any language:
the run of words within one clause that carries the most content, at most MAX_WORDS words.

Words are read as the captions read them (tasks/reading.py: spaces, or a segmenter for scripts
written without them). With no part-of-speech tagger for every language, a word's length stands
for its content: short words are mostly the little ones (the, of, und, и, de), long ones name
things; a number always counts, since it is often the point (10,000 flowers), and so does a
capital within a sentence (a name, a German noun). The same narration gives the same phrase
every time.
"""

from __future__ import annotations

import unicodedata

from tasks.reading import read_line
from tasks.storyboard import MAX_ON_SCREEN_CHARS
from tasks.writing import join_words, unspaced

MAX_WORDS = 5
# A spaced word of this many letters or fewer carries no content of its own.
SHORT_WORD = 3
NUMBER_BONUS = 4
CAPITAL_BONUS = 2
SENTENCE_END = ".!?…。！？"


def key_phrase(narration: str, language: str) -> str | None:
    """The key phrase of `narration`, its first letter capitalised; None when it has no word
    of content (a line of emoji or punctuation)."""
    best, best_score = None, 0
    for clause, weights in _clauses(narration, language):
        for first in range(len(clause)):
            for last in range(first, min(first + MAX_WORDS, len(clause))):
                if not (weights[first] and weights[last]):
                    continue  # a phrase starts and ends on words of content
                phrase = join_words(clause[first:last + 1])
                if len(phrase) > MAX_ON_SCREEN_CHARS:
                    break
                inside = weights[first:last + 1]
                score = sum(inside) - inside.count(0)  # a little word inside costs a little
                if score > best_score:
                    best, best_score = phrase, score
    return best and best[:1].upper() + best[1:]


def _clauses(narration: str, language: str) -> list[tuple[list[str], list[int]]]:
    """The written words of `narration` without their punctuation, and their weights, in runs
    that punctuation (a comma, a full stop, a dash) does not cut."""
    line = " ".join(narration.split())
    clauses: list[tuple[list[str], list[int]]] = [([], [])]
    opens_sentence = True
    for word in read_line(line, language).words:
        written = line[word.first:word.last]
        bare = written.strip("".join(c for c in written if _punctuation(c)))
        if bare:
            clauses[-1][0].append(bare)
            clauses[-1][1].append(_weight(bare, opens_sentence))
            opens_sentence = False
        if _punctuation(written[-1]) or not bare:
            clauses.append(([], []))
            opens_sentence = opens_sentence or written.rstrip("\"'’”»)」』")[-1:] in SENTENCE_END
    return [clause for clause in clauses if clause[0]]


def _punctuation(char: str) -> bool:
    return unicodedata.category(char)[0] in "PS" and not char.isalnum()


def _weight(word: str, opens_sentence: bool) -> int:
    """How much content `word` carries: 0 for a little word."""
    letters = sum(char.isalnum() for char in word)
    if any(char.isdigit() for char in word):
        return letters + NUMBER_BONUS
    if any(unspaced(char) for char in word):  # one character alone is a particle (的, は, の)
        return 2 * (letters - 1)
    named = word[0].isupper() and not opens_sentence
    return max(0, letters - SHORT_WORD) + (CAPITAL_BONUS if named and letters > 1 else 0)
