"""Loudness to a target: EBU R128 measurement, and a soundtrack encoded at a target loudness
with its true peak under a ceiling, checked on the encoded file itself.

Why not ffmpeg's loudnorm: in one pass it rides the gain (its dynamic mode), and it misses
short videos (its 3 s window has little to settle on); in two passes its linear mode falls
back to dynamic whenever the gain would push the true peak over the ceiling, which a voice
at -14 LUFS does. Here the gain is one constant and a lookahead limiter, run at four times
the sample rate so that it sees the peaks between samples, holds the true peak. AAC's
encoder overshoots a little; the encoded file is measured, and the gain and ceiling are
corrected until it meets the target.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tasks.ffmpeg import FINAL_AUDIO_ARGS, MediaError, ffmpeg_exe, run_ffmpeg

TRUE_PEAK_MAX = -1.5  # dBTP, what every published video stays under
FIRST_CEILING = -2.0  # dBTP the limiter aims at: leaves AAC room to overshoot
TOLERANCE = 0.5  # LU from the target that a pass may land and be kept
MAX_PASSES = 6
LIMITED_SLOPE = 0.5  # LU per dB of gain into the limiter, for eSpeak's voice: 0.3 to 0.7
MIN_SLOPE = 0.25  # a dB of gain gives at least this much loudness, however hard it limits
SILENT = -70.0  # LUFS: EBU R128's absolute gate; nothing louder means nothing to normalise
OVERSAMPLED = 192_000  # Hz the limiter runs at: 4x of 48 kHz

_SUMMARY = re.compile(r"Integrated loudness:\s*I:\s*(-?[\d.]+|-?inf|nan) LUFS.*?"
                      r"True peak:\s*Peak:\s*(-?[\d.]+|-?inf|nan) dBFS", re.S)


@dataclass(frozen=True)
class Loudness:
    integrated: float  # LUFS
    true_peak: float  # dBTP


def measure(path: Path) -> Loudness:
    """Integrated loudness and true peak of the first audio stream of `path` (ffmpeg's
    ebur128 filter, the EBU R128 / ITU-R BS.1770 meter)."""
    completed = subprocess.run(
        [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:a:0",
         "-af", "ebur128=peak=true:framelog=quiet", "-f", "null", "-"],
        capture_output=True, text=True, errors="replace")
    summary = _SUMMARY.search(completed.stderr[completed.stderr.rfind("Summary:"):])
    if completed.returncode != 0 or summary is None:
        tail = " | ".join(completed.stderr.strip().splitlines()[-3:])
        raise MediaError(f"cannot measure the loudness of {path.name}: {tail or 'no message'}")
    integrated, peak = (float(value) for value in summary.groups())
    return Loudness(max(integrated, SILENT), max(peak, -200.0))


def gain_to(measured: Loudness, target: float) -> float:
    """dB that bring `measured` to `target`; none for silence, which no gain makes loud."""
    return 0.0 if measured.integrated <= SILENT else target - measured.integrated


def encode_at(source: Path, out: Path, target: float) -> tuple[Loudness, int]:
    """Encode `source` (the mixed soundtrack) to `out` as AAC at `target` LUFS integrated and a
    true peak under TRUE_PEAK_MAX, both as measured on `out`; return that and the passes taken."""
    gain, ceiling = gain_to(measure(source), target), FIRST_CEILING
    tried: list[tuple[float, float]] = []  # (gain, integrated loudness it gave)
    for passes in range(1, MAX_PASSES + 1):
        limiter = (f"aresample={OVERSAMPLED},alimiter=limit={10 ** (ceiling / 20):.6f}:"
                   "attack=2:release=30:level=false:latency=true")
        run_ffmpeg(["-i", str(source), "-af", f"volume={gain:.3f}dB,{limiter},aresample=48000",
                    *FINAL_AUDIO_ARGS, str(out)], what="encode the soundtrack")
        got = measure(out)
        # The meter prints tenths: a peak it shows as -1.5 may be -1.46, so that is not kept.
        if got.integrated <= SILENT or (abs(got.integrated - target) <= TOLERANCE
                                        and got.true_peak < TRUE_PEAK_MAX):
            return got, passes
        tried.append((gain, got.integrated))
        # The limiter takes loudness off the peaks, so a dB of gain gives less than a dB:
        # the last two passes say how much; before that, a guess from speech measured here.
        slope = LIMITED_SLOPE if got.integrated < target else 1.0
        if len(tried) > 1:
            (gain_a, loud_a), (gain_b, loud_b) = tried[-2:]
            slope = min(max((loud_b - loud_a) / (gain_b - gain_a or 1e-9), MIN_SLOPE), 1.0)
        gain += (target - got.integrated) / slope
        if got.true_peak >= TRUE_PEAK_MAX:  # AAC overshot the limiter: lower it as much, and more
            ceiling -= got.true_peak - TRUE_PEAK_MAX + 0.2
            tried.clear()  # a lower ceiling takes loudness too: measure the slope afresh
    raise MediaError(f"the soundtrack did not reach {target} LUFS with a true peak under "
                     f"{TRUE_PEAK_MAX} dBTP in {MAX_PASSES} passes (last: "
                     f"{got.integrated:.1f} LUFS, {got.true_peak:.1f} dBTP)")
