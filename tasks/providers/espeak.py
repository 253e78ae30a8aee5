"""eSpeak NG through ctypes: offline, deterministic speech with word timings."""

from __future__ import annotations

import _ctypes
import bisect
import ctypes
import os
import re
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from pathlib import Path

import espeakng_loader
from pydantic import Field

from tasks.audio import wav_bytes
from tasks.language import UnknownLanguage, language
from tasks.providers.base import ProviderError, SpeechRequest, SpeechResult, SpeechSynthesizer, Usage, WordTiming

# From speak_lib.h (API revision 12).
_SYNCHRONOUS = 2  # AUDIO_OUTPUT_SYNCHRONOUS: audio comes back through the callback, in the calling thread
_DONT_EXIT = 0x8000  # espeakINITIALIZE_DONT_EXIT: fail instead of calling exit() when data is missing
_POS_CHARACTER = 1
_CHARS_UTF8 = 1  # without espeakSSML or espeakPHONEMES: the text is spoken, never parsed as markup
_RATE, _PITCH = 1, 3
_END_OF_EVENTS, _WORD_EVENT = 0, 1


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT. `text_position` is 1-based; it and `length` count characters (code points), not bytes."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # milliseconds into the audio
        ("sample", ctypes.c_int),
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_Callback = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int, ctypes.POINTER(_Event))

_lock = threading.Lock()  # the library is one global, thread-unsafe state machine
_folder: tempfile.TemporaryDirectory | None = None
_COPY_PREFIX = "reelflow-espeak-"  # then the owner's pid: reelflow-espeak-1234-abcd1234


def _library_path() -> str:
    """Our own copy of the library: nothing else in the process can share its state or keep it loaded."""
    global _folder
    if _folder is None:
        _remove_copies_of_dead_processes()
        _folder = tempfile.TemporaryDirectory(prefix=f"{_COPY_PREFIX}{os.getpid()}-")
        shutil.copy(espeakng_loader.get_library_path(), _folder.name)
    return str(Path(_folder.name) / Path(espeakng_loader.get_library_path()).name)


def _remove_copies_of_dead_processes() -> None:
    """A process killed with SIGKILL never removes its copy: the next one to start does."""
    for folder in Path(tempfile.gettempdir()).glob(f"{_COPY_PREFIX}*-*"):
        owner = folder.name.removeprefix(_COPY_PREFIX).split("-", 1)[0]
        if owner.isdigit() and not _alive(int(owner)):
            shutil.rmtree(folder, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


class EspeakSpeech(SpeechSynthesizer):
    name = "espeak"
    version = 1
    reads_kanji = False  # its `ja` voice reads kana but spells kanji out, one by one

    class Options(SpeechSynthesizer.Options):
        model: str = "espeak-ng"
        rate: int = Field(175, ge=80, le=450)  # words per minute
        pitch: int = Field(50, ge=0, le=99)

    def speaks(self, voice: str, language_tag: str) -> bool | None:
        spoken = voice_languages().get(voice.partition("+")[0].lower())
        return None if spoken is None else language(language_tag).code in spoken

    def speaking_voice(self, voice: str | None, language_tag: str) -> str:
        """`voice` if it speaks the language, else the language's voice with `voice`'s variant
        (`en-us+f2` says French as `fr+f2`): a character keeps its voice in every language."""
        if voice is None or self.speaks(voice, language_tag) is not False:
            return voice or self.default_voice(language_tag)
        variant = voice.partition("+")[2]
        return self.default_voice(language_tag) + (f"+{variant}" if variant else "")

    def default_voice(self, language_tag: str) -> str:
        """The language's voice; a regional tag eSpeak has a voice for is that voice (pt-br)."""
        regional = language_tag.lower()
        if "-" in regional and self.speaks(regional, language_tag):
            return regional
        return language(language_tag).espeak

    def synthesize(self, request: SpeechRequest) -> SpeechResult:
        with _lock:
            sample_rate, pcm, events = self._speak(request)
        if not any(pcm):
            raise ProviderError(f"espeak produced no audio for {request.text!r}")
        duration = len(pcm) / 2 / sample_rate
        return SpeechResult(
            wav=wav_bytes(pcm, sample_rate),
            words=_word_timings(request.text, events, duration),
            usage=Usage(characters=len(request.text)),
        )

    def _speak(self, request: SpeechRequest) -> tuple[int, bytes, list[tuple[int, int, float]]]:
        """Sample rate, 16-bit PCM and (character offset, length, seconds) of each WORD event."""
        chunks: list[bytes] = []
        events: list[tuple[int, int, float]] = []

        def on_audio(wav, count, event_list) -> int:
            if wav:  # a NULL buffer marks the end
                chunks.append(ctypes.string_at(wav, count * 2))
            i = 0
            while event_list[i].type != _END_OF_EVENTS:
                event = event_list[i]
                if event.type == _WORD_EVENT:
                    events.append((max(event.text_position - 1, 0), event.length, event.audio_position / 1000))
                i += 1
            return 0  # go on

        callback = _Callback(on_audio)
        with _fresh_library() as (library, sample_rate):
            library.espeak_SetSynthCallback(callback)
            voices = (request.voice, _language_voice(request.language))
            if all(library.espeak_SetVoiceByName(voice.encode()) != 0 for voice in voices):
                raise ProviderError(f"espeak has no voice {request.voice!r} nor one for {request.language!r}")
            library.espeak_SetParameter(_RATE, self.options.rate, 0)
            library.espeak_SetParameter(_PITCH, self.options.pitch, 0)
            text = request.text.replace("\0", " ").encode()  # NUL would end the C string; a space keeps offsets
            size = ctypes.c_size_t(len(text) + 1)
            status = library.espeak_Synth(text, size, 0, _POS_CHARACTER, 0, _CHARS_UTF8, None, None)
            if status != 0:
                raise ProviderError(f"espeak_Synth failed ({status})")
        return sample_rate, b"".join(chunks), events


@cache
def voice_languages() -> dict[str, frozenset[str]]:
    """Each voice eSpeak has, by file name and by name (lower case, as it looks them up), and
    the languages it speaks (primary subtags: `cmn` speaks cmn and zh)."""
    voices = {}
    for path in (Path(espeakng_loader.get_data_path()) / "lang").rglob("*"):
        if not path.is_file():
            continue
        fields = [line.split() for line in path.read_text(encoding="utf-8", errors="replace").splitlines()]
        spoken = frozenset(words[1].split("-")[0].lower() for words in fields
                           if len(words) > 1 and words[0] == "language")
        names = [" ".join(words[1:]) for words in fields if words and words[0] == "name"]
        for name in [path.name, *names[:1]]:
            voices.setdefault(name.lower(), spoken)
    return voices


def _language_voice(tag: str) -> str:
    """The voice to try when the one asked for does not exist."""
    try:
        return language(tag).espeak
    except UnknownLanguage:
        return tag


@contextmanager
def _fresh_library() -> Iterator[tuple[ctypes.CDLL, int]]:
    """A newly loaded and initialised library with its sample rate, unloaded afterwards.

    eSpeak keeps synthesis state in C statics that survive espeak_Terminate (its pitch flutter phase, for one), so
    a library loaded once says the same text slightly differently on every call. Loading it afresh for each call
    makes every call start from the same state, for a few milliseconds.
    """
    library = ctypes.CDLL(_library_path())
    try:
        data = espeakng_loader.get_data_path().encode()
        sample_rate = library.espeak_Initialize(_SYNCHRONOUS, 0, data, _DONT_EXIT)
        if sample_rate <= 0:
            raise ProviderError(f"espeak failed to initialise ({sample_rate})")
        try:
            yield library, sample_rate
        finally:
            library.espeak_Terminate()
    finally:
        _ctypes.dlclose(library._handle)


def _word_timings(text: str, events: list[tuple[int, int, float]], duration: float) -> list[WordTiming]:
    """One timing per written word, so that the words joined by spaces give back the text.

    A word is a run of non-space characters, with its punctuation: subtitles show exactly what was written.
    eSpeak reports reliable starts but loose lengths ("don" for "don't", several events for "1,234" or "日本"),
    so only starts are used: a word starts at the first event inside it and ends where the next word starts.
    A word eSpeak says nothing for ("—") joins the word before it, or the next one at the start.
    """
    tokens = [(match.start(), match.end()) for match in re.finditer(r"\S+", text)]
    ends = [end for _, end in tokens]
    starts: dict[int, float] = {}
    for position, _length, seconds in events:
        starts.setdefault(bisect.bisect_right(ends, position), seconds)  # the token holding (or after) it
    groups: list[tuple[int, int, float]] = []  # first character, last character, start time
    opening = None  # where silent words before the first spoken one begin: they join it
    for index, (first, last) in enumerate(tokens):
        if index not in starts and groups:
            groups[-1] = (groups[-1][0], last, groups[-1][2])
        elif index not in starts and index < len(tokens) - 1:
            opening = first if opening is None else opening
        else:
            previous = groups[-1][2] if groups else 0.0
            begin = first if opening is None else opening
            opening = None
            groups.append((begin, last, min(max(starts.get(index, 0.0), previous), duration)))
    following = [start for _, _, start in groups[1:]] + [duration]
    return [WordTiming(text=text[first:last], start=start, end=end)
            for (first, last, start), end in zip(groups, following)]
