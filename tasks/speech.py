"""The speech node: one line of a scene in its speaker's voice, as a WAV with word timings.

A node per line, keyed by its text (as written, and as the voice is given it: tasks/reading.py),
voice and provider: editing one line of a dialogue redoes that line alone, and a line said twice
with the same voice is synthesized once. Its `words` are the written words with their times.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from config.settings import Settings
from tasks.audio import wav_bytes
from tasks.nodes import Generator, Node
from tasks.providers.base import SpeechRequest, SpeechResult, SpeechSynthesizer, Usage, WordTiming
from tasks.reading import read_line, written_timings
from tasks.storyboard import NARRATOR, Scene, Storyboard, take_params

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

SPEECH_VERSION = 3
# A line with nothing to say (emoji alone) is shown this long over quiet.
QUIET_LINE_SECONDS = 1.0
QUIET_LINE_RATE = 16_000


def line_id(scene: Scene, number: int) -> str:
    """The node id of a scene's line `number` (from 1)."""
    return f"{scene.id}-l{number}-tts"


def voice_for(speaker: str, storyboard: Storyboard, settings: Settings,
              synthesizer: SpeechSynthesizer) -> str:
    """The voice `synthesizer` speaks `speaker`'s lines with: the settings' voice for that
    speaker, else the character's own voice for that provider, else the storyboard's voice (as
    the settings map it for the provider), else the settings' voice for the language; then made
    to speak the storyboard's language (SpeechSynthesizer.speaking_voice): the provider's own
    voice for the language when none is given."""
    voices = settings.voices.get(synthesizer.name, {})
    own = storyboard.character(speaker).voices.get(synthesizer.name) if speaker != NARRATOR else None
    given = storyboard.voice and (voices.get(storyboard.voice) or storyboard.voice)
    chosen = voices.get(speaker) or own or given or voices.get(storyboard.language)
    return synthesizer.speaking_voice(chosen, storyboard.language)


def describe(step: Step, storyboard: Storyboard, settings: Settings,
             synthesizer: SpeechSynthesizer, upstream: Upstream) -> tuple[Node, Generator]:
    scene = storyboard.scene(step.scene)
    line = scene.lines[int(step.subject) - 1]
    reading = read_line(line.text, storyboard.language, synthesizer.reads_kanji)
    request = SpeechRequest(text=reading.text, language=storyboard.language,
                            voice=voice_for(line.speaker, storyboard, settings, synthesizer))
    node = Node.served_by(synthesizer, id=step.id, kind="tts", version=SPEECH_VERSION,
                          scene=scene.id, params={**request.model_dump(), "written": line.text,
                                                       **take_params(scene.takes.speech)},
                          inputs={}, expected=Usage(characters=len(request.text)))

    def generate(workdir):
        result = synthesizer.synthesize(request) if request.text else _quiet(line.text)
        words = written_timings(reading, result.words)
        return {"audio": (result.wav, "audio/wav"),
                "words": (json.dumps([w.model_dump() for w in words]).encode(),
                          "application/json")}, result.usage

    return node, generate


def _quiet(text: str) -> SpeechResult:
    """Quiet for a line no voice has anything to say of: its text is shown all along."""
    frames = round(QUIET_LINE_SECONDS * QUIET_LINE_RATE)
    return SpeechResult(wav=wav_bytes(b"\0\0" * frames, QUIET_LINE_RATE),
                        words=[WordTiming(text=text, start=0.0, end=QUIET_LINE_SECONDS)])
