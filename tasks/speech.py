"""The speech node: a scene's lines, each in its speaker's voice, as one WAV with word timings."""

from __future__ import annotations

import io
import json
import wave

from prefect import task
from prefect.cache_policies import NO_CACHE

from config.settings import Settings
from tasks.audio import wav_bytes
from tasks.nodes import Generator, Node, NodeOutcome, produce, reported
from tasks.providers.base import (
    Modality,
    SpeechRequest,
    SpeechSynthesizer,
    Usage,
    WordTiming,
)
from tasks.storyboard import Scene, Storyboard

SPEECH_VERSION = 1
LINE_GAP_SECONDS = 0.25


def speech_node(scene: Scene, storyboard: Storyboard, settings: Settings,
                synthesizer: SpeechSynthesizer) -> tuple[Node, Generator]:
    voices = settings.voices.get(synthesizer.name, {})
    requests = []
    for line in scene.lines:
        voice = storyboard.voice_for(line.speaker)
        requests.append(SpeechRequest(text=line.text, language=storyboard.language,
                                      voice=voices.get(line.speaker) or voices.get(voice) or voice))
    node = Node.served_by(
        synthesizer, id=f"{scene.id}-tts", kind="tts", version=SPEECH_VERSION, scene=scene.id,
        params={"lines": [r.model_dump() for r in requests], "gap": LINE_GAP_SECONDS},
        inputs={}, expected=Usage(characters=sum(len(r.text) for r in requests)),
    )

    def generate(workdir):
        results = [synthesizer.synthesize(request) for request in requests]
        audio, words = _join_lines([(r.wav, r.words) for r in results])
        usage = Usage(characters=sum(r.usage.characters for r in results))
        words_json = json.dumps([w.model_dump() for w in words]).encode()
        return {"audio": (audio, "audio/wav"), "words": (words_json, "application/json")}, usage

    return node, generate


def speak(scene: Scene, storyboard: Storyboard, settings: Settings) -> NodeOutcome:
    return produce(settings, Modality.speech,
                   lambda synthesizer: speech_node(scene, storyboard, settings, synthesizer))


def _join_lines(lines: list[tuple[bytes, list[WordTiming]]]) -> tuple[bytes, list[WordTiming]]:
    """One WAV of all lines with a short pause between them; word times shifted to match."""
    frames, words, offset, rate = [], [], 0.0, None
    for index, (wav, line_words) in enumerate(lines):
        with wave.open(io.BytesIO(wav)) as reader:
            rate = rate or reader.getframerate()
            if (reader.getframerate(), reader.getnchannels(), reader.getsampwidth()) != (rate, 1, 2):
                raise ValueError("speech lines differ in format; expected 16-bit mono")
            pcm = reader.readframes(reader.getnframes())
        if index:
            gap = b"\0\0" * round(LINE_GAP_SECONDS * rate)
            frames.append(gap)
            offset += LINE_GAP_SECONDS
        frames.append(pcm)
        words += [WordTiming(text=w.text, start=w.start + offset, end=w.end + offset)
                  for w in line_words]
        offset += len(pcm) / 2 / rate
    return wav_bytes(b"".join(frames), rate), words


@task(name="tts", task_run_name="scene-{scene.id}-tts", cache_policy=NO_CACHE)
def synthesize_speech(scene: Scene, storyboard: Storyboard, settings: Settings) -> NodeOutcome:
    """Voice a scene's narration."""
    return reported(speak(scene, storyboard, settings))
