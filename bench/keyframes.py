"""Benchmark: keyframes are made in parallel, each waiting only for the references it uses.

A 12-scene storyboard with 3 characters (two per scene) and 2 locations, rendered with an image
provider that takes L seconds per picture. The wall time from the first reference's start to
the last keyframe's end, divided by the critical path (one reference, then one keyframe: 2L).
Goal ≤ 1.3; with the old chain of keyframes (each waiting for the one before) it is about
(L + 12L) / 2L = 6.5.

First, the offline provider's own speed: the time `local` takes to draw one typographic
keyframe at 1080x1920, over 12 scenes' on-screen texts in several scripts (after one warm-up
card per script, which loads the fonts and segmenters once per process).

    .venv/bin/python bench/keyframes.py [--latency 2.0]
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.prefect_defaults import apply_prefect_defaults  # noqa: E402

apply_prefect_defaults()

from tasks.providers import registry  # noqa: E402
from PIL import Image  # noqa: E402

from tasks.providers.base import ImageGenerator, ImageRequest, ImageResult, Usage  # noqa: E402
from tasks.storyboard import Storyboard  # noqa: E402

SCENES = 12
CAST = ["ada", "bea", "cy"]
PLACES = ["dock", "attic"]


class SlowImage(ImageGenerator):
    """A remote image model as the pipeline sees it: L seconds of waiting, then a picture.
    Every call's span is kept."""

    name = "slow"
    accepts_reference_images = True
    latency = 2.0
    spans: list[tuple[str, float, float]] = []
    lock = threading.Lock()

    def generate(self, request: ImageRequest) -> ImageResult:
        started = time.monotonic()
        time.sleep(self.latency)
        buffer = io.BytesIO()
        Image.new("RGB", (request.width, request.height), "#406080").save(buffer, format="PNG")
        kind = "keyframe" if request.references else "reference"
        with self.lock:
            self.spans.append((kind, started, time.monotonic()))
        return ImageResult(png=buffer.getvalue(), usage=Usage(images=1))


def storyboard() -> Storyboard:
    return Storyboard.model_validate({
        "title": "Keyframes in parallel",
        "characters": [{"id": c, "name": c.title(), "appearance": f"{c}, a sailor"} for c in CAST],
        "locations": [{"id": p, "description": f"the {p}"} for p in PLACES],
        "scenes": [{
            "id": f"s{n + 1:03d}", "order": n, "duration": 2.5, "visual_prompt": f"shot {n + 1}",
            "cast": [CAST[n % 3], CAST[(n + 1) % 3]], "location": PLACES[n % 2],
            "lines": [{"speaker": CAST[n % 3], "text": f"Line {n + 1}."}],
        } for n in range(SCENES)]})


CARD_TEXTS = ["Bees talk by dancing", "A waggle points to food", "300 metres away",
              "Η ταχύτητα του φωτός", "Скорость света", "蜜蜂用舞蹈交流", "光速は変わらない",
              "سرعة الضوء ثابتة", "The sun sets the angle", "Colonies of 50,000 bees",
              "Every dance is a map", "Scouts vote on a new home"]


def local_card_times() -> list[float]:
    """Seconds per keyframe of the `local` provider at 1080x1920, one per CARD_TEXTS."""
    from tasks.providers.local_image import LocalImage

    def card(text: str, index: int) -> float:
        started = time.perf_counter()
        LocalImage().generate(ImageRequest(prompt=f"shot {index}", text=text, width=1080,
                                           height=1920, seed=index,
                                           style=["documentary", "neon", "vivid"][index % 3]))
        return time.perf_counter() - started

    for index, text in enumerate(CARD_TEXTS):
        card(text, index + 100)  # warm-up: fonts, segmenters
    return [card(text, index) for index, text in enumerate(CARD_TEXTS)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=2.0)
    args = parser.parse_args()
    SlowImage.latency = args.latency

    times = local_card_times()
    print(f"local keyframe at 1080x1920: mean {sum(times) / len(times):.3f} s, "
          f"max {max(times):.3f} s over {len(times)} cards")

    workdir = Path(tempfile.mkdtemp(prefix="reelflow-bench-"))
    prices = workdir / "prices.yaml"
    prices.write_text((ROOT / "config" / "prices.yaml").read_text()
                      + "slow:\n  default: {per_image: 0.0}\n")
    os.environ.update(REELFLOW_STORE=str(workdir / "store"), REELFLOW_OUT=str(workdir / "out"),
                      REELFLOW_SHORT_SIDE="180", REELFLOW_FPS="12", REELFLOW_IMAGE="slow",
                      REELFLOW_PRICES=str(prices),
                      REELFLOW_PROVIDER_CONCURRENCY=json.dumps({"slow": 32}))
    registry.register(SlowImage)
    from flows.options import RenderOptions
    from flows.video import render_storyboard

    render_storyboard(storyboard().model_copy(update={"title": "warm up", "seed": 1}),
                      RenderOptions(short_side=64))  # starts Prefect's server; not timed
    SlowImage.spans.clear()
    render_storyboard(storyboard())

    references = [span for span in SlowImage.spans if span[0] == "reference"]
    keyframes = [span for span in SlowImage.spans if span[0] == "keyframe"]
    wall = max(end for _, _, end in keyframes) - min(start for _, start, _ in references)
    critical = 2 * args.latency
    print(f"{len(references)} references, {len(keyframes)} keyframes, latency L = "
          f"{args.latency:.1f} s per picture")
    print(f"wall time of references and keyframes   {wall:6.2f} s")
    print(f"critical path (reference + keyframe)    {critical:6.2f} s")
    print(f"wall ÷ critical path                    {wall / critical:6.2f}   (goal ≤ 1.3)")


if __name__ == "__main__":
    main()
