"""The speech node: one line of a scene in its speaker's voice, as a WAV with word timings.

A node per line, keyed by its text, voice and provider: editing one line of a dialogue redoes
that line alone, and a line said twice with the same voice is synthesized once.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from config.settings import Settings
from tasks.nodes import Generator, Node
from tasks.providers.base import SpeechRequest, SpeechSynthesizer, Usage
from tasks.storyboard import NARRATOR, Scene, Storyboard

if TYPE_CHECKING:
    from tasks.graph import Step, Upstream

SPEECH_VERSION = 2


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
    request = SpeechRequest(text=line.text, language=storyboard.language,
                            voice=voice_for(line.speaker, storyboard, settings, synthesizer))
    node = Node.served_by(synthesizer, id=step.id, kind="tts", version=SPEECH_VERSION,
                          scene=scene.id, params=request.model_dump(), inputs={},
                          expected=Usage(characters=len(request.text)))

    def generate(workdir):
        result = synthesizer.synthesize(request)
        words = json.dumps([w.model_dump() for w in result.words]).encode()
        return {"audio": (result.wav, "audio/wav"), "words": (words, "application/json")}, \
            result.usage

    return node, generate
