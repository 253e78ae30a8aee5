"""Many videos at once: each topic becomes its own make-video run, a few at a time, so one
failure stops nothing else; a table at the end says how each went."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextvars import copy_context
from pathlib import Path
from typing import Annotated

import httpx
from prefect import flow
from prefect.artifacts import create_table_artifact
from pydantic import BaseModel, Field

from flows.choices import StyleName
from flows.creative import Creative
from flows.options import RenderOptions
from flows.video import make_video
from tasks.storyboard import MAX_SCENES, Aspect

TOPICS_FILE_TIMEOUT_S = 30


class BatchRow(BaseModel):
    topic: str
    status: str
    video: str | None = None
    cost_usd: float = 0.0
    generated: int = 0
    cached: int = 0
    error: str | None = None


@flow(name="make-videos", flow_run_name="batch-of-{concurrency}")
def make_videos(
    topics: list[str] | None = None,
    topics_file: str | None = None,
    scenes: Annotated[int, Field(ge=1, le=MAX_SCENES)] = 6,
    aspect: Aspect = Aspect.portrait,
    style: StyleName = StyleName("documentary"),
    concurrency: Annotated[int, Field(ge=1, le=16)] = 2,
    language: str | None = None,
    voice: str | None = None,
    cast: list[str] | None = None,
    places: list[str] | None = None,
    creative: Creative = Creative(),
    options: RenderOptions = RenderOptions(),
) -> list[BatchRow]:
    """Make one video per topic, a few at a time; one failure stops no other.

    Args:
        topics: The topics, one video each.
        topics_file: A path or http(s) URL of a file with one topic per line (# comments).
        scenes: Scenes per video.
        aspect: Frame shape: 9:16 for shorts, 16:9 for landscape, 1:1 square.
        style: Visual style, from config/styles.yaml.
        concurrency: Videos made at once.
        language: Narration language code of every video. Empty: each topic's own, detected.
        voice: Narrator voice of every video. Empty: each speech provider's voice for the
            language.
        cast: Characters of a dialogue, by id, in every video.
        places: Locations the scenes take place in, by id.
        creative: A director's look, for every video.
        options: Profile, output folder, size, bucket and cost limit (max_cost is per video).
    """
    every = [*(topics or []), *(read_topics(topics_file) if topics_file else [])]
    shared = dict(scenes=scenes, aspect=aspect, style=style, language=language, voice=voice,
                  cast=cast, places=places, creative=creative, options=options)

    def make_one(topic: str) -> BatchRow:
        state = make_video(topic=topic, **shared, return_state=True)
        if not state.is_completed():
            return BatchRow(topic=topic, status="failed", error=state.message)
        summary = state.result()
        return BatchRow(topic=topic, status="completed", video=summary.url or str(summary.video),
                        cost_usd=summary.cost_usd, generated=summary.generated,
                        cached=summary.cached)

    with ThreadPoolExecutor(concurrency) as pool:
        # Each video runs as a child of this batch run: its thread gets a copy of this run's
        # context, taken here, in the batch's own thread.
        futures = [pool.submit(copy_context().run, make_one, topic) for topic in every]
        rows = [future.result() for future in futures]
    create_table_artifact(table=[row.model_dump() for row in rows],
                          description=f"{sum(r.status == 'completed' for r in rows)} of "
                                      f"{len(rows)} videos made")
    return rows


def read_topics(source: str) -> list[str]:
    """Topics from a file or an http(s) URL, one per line."""
    if source.startswith(("http://", "https://")):
        response = httpx.get(source, timeout=TOPICS_FILE_TIMEOUT_S, follow_redirects=True)
        response.raise_for_status()
        text = response.text
    else:
        text = Path(source).expanduser().read_text(encoding="utf-8")
    lines = (line.strip() for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("#")]
