"""Benchmark: what the shot router saves on a 12-scene, 3-character story, at list prices.

The shot list is a typical short story's (an establishing shot, wide shots, dialogue in medium
shots and close-ups, two emotional peaks, one action beat); each scene asks for a 6 s clip.
For every quality it prints the clips' cost as routed next to all of them on the cloud
profile's first video model (Veo). No provider is called.

    .venv/bin/python bench/routing.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.settings import load_settings  # noqa: E402
from tasks.preflight import route_cost  # noqa: E402
from tasks.storyboard import Line, Scene, ShotSize, Storyboard  # noqa: E402

# (shot, intensity, physics) per scene.
SHOTS = [("ELS", 0.3, False), ("LS", 0.4, False), ("MS", 0.4, False), ("MCU", 0.5, False),
         ("CU", 0.6, False), ("MS", 0.5, False), ("LS", 0.8, True), ("MCU", 0.6, False),
         ("CU", 0.9, False), ("MS", 0.5, False), ("ECU", 0.95, False), ("LS", 0.3, False)]


def story() -> Storyboard:
    return Storyboard(title="Routing bench", scenes=[
        Scene(id=f"s{n:03d}", order=n, lines=[Line(text=f"Line {n}.")], visual_prompt=f"shot {n}",
              duration=6.0, shot=ShotSize(shot), intensity=intensity, physics=physics)
        for n, (shot, intensity, physics) in enumerate(SHOTS, 1)])


def main() -> None:
    board = story()
    results = {}
    for quality in ("draft", "standard", "premium"):
        cost = route_cost(board, load_settings("cloud", quality=quality))
        saved = 1 - cost.routed_usd / cost.unrouted_usd
        results[quality] = {**cost.model_dump(), "saved": round(saved, 3)}
        print(f"{quality:9s} routed ${cost.routed_usd:.2f}  all on {cost.unrouted} "
              f"${cost.unrouted_usd:.2f}  saved {saved:.0%}  ({cost.scenes})")
    out = ROOT / "bench" / "results" / "routing-12.json"
    out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
