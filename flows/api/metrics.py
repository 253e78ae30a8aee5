"""GET /metrics/prometheus: the API's requests (by route and status, with a latency
histogram) counted here, and the jobs and what they made read from Prefect at each scrape:
jobs by status, videos made, provider cost and reuse savings in USD, the cache hit ratio. A
scrape reads only the summaries published since the one before."""

from __future__ import annotations

import asyncio
import json

from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterType,
    FlowFilter,
    FlowFilterName,
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
)
from prefect.client.schemas.sorting import ArtifactSort
from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from flows.api.jobs import STATE_TYPES, Status
from flows.report import SUMMARY

VIDEO_FLOWS = ["make-video", "render-storyboard", "rerun-with-edits"]
PAGE = 200


class Metrics:
    def __init__(self):
        self.registry = CollectorRegistry()
        self.requests = Counter("reelflow_api_requests", "Requests answered",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("reelflow_api_request_seconds", "Time to answer a request",
                                 ["route"], registry=self.registry)
        # Totals over every video's summary (flows/report.py), and the summaries counted in
        # them: a summary is written once, so a scrape reads on only while it finds new ones.
        self.made = {"videos": 0, "cost_usd": 0.0, "saved_usd": 0.0, "generated": 0, "cached": 0}
        self.counted: set = set()
        self.reading = asyncio.Lock()

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        self.requests.labels(route, method, str(status)).inc()
        self.latency.labels(route).observe(seconds)

    async def exposition(self, client: PrefectClient) -> bytes:
        async with self.reading:
            await self._count_new_summaries(client)
        read = CollectorRegistry()
        read.register(_Collected(await _jobs(client), dict(self.made)))
        return generate_latest(self.registry) + generate_latest(read)

    async def _count_new_summaries(self, client: PrefectClient) -> None:
        """Newest first, page by page, until a page brings nothing new (runs published during
        the read shift the pages: an artifact can come twice, and counts once)."""
        offset = 0
        while True:
            page = await client.read_artifacts(
                artifact_filter=ArtifactFilter(type=ArtifactFilterType(any_=["table"])),
                sort=ArtifactSort.CREATED_DESC, limit=PAGE, offset=offset)
            new = [artifact for artifact in page if artifact.id not in self.counted]
            for artifact in new:
                self.counted.add(artifact.id)
                if artifact.description != SUMMARY or not artifact.data:
                    continue
                rows = (json.loads(artifact.data) if isinstance(artifact.data, str)
                        else artifact.data)
                for row in rows:
                    self.made["videos"] += 1
                    for name in ("cost_usd", "saved_usd", "generated", "cached"):
                        self.made[name] += row.get(name) or 0
            if not new or len(page) < PAGE:
                return
            offset += PAGE


class _Collected:
    def __init__(self, jobs: dict[str, int], made: dict[str, float]):
        self.jobs, self.made = jobs, made

    def collect(self):
        jobs = GaugeMetricFamily("reelflow_jobs", "Video flow runs by job status "
                                 "(started includes progress)", labels=["status"])
        for status, count in self.jobs.items():
            jobs.add_metric([status], count)
        yield jobs
        yield CounterMetricFamily("reelflow_videos_made", "Videos published",
                                  value=self.made["videos"])
        yield CounterMetricFamily("reelflow_provider_cost_usd", "Paid to providers",
                                  value=self.made["cost_usd"])
        yield CounterMetricFamily("reelflow_reuse_saved_usd", "Not paid again: nodes reused "
                                  "from the store", value=self.made["saved_usd"])
        nodes = self.made["generated"] + self.made["cached"]
        yield GaugeMetricFamily("reelflow_cache_hit_ratio", "Nodes reused over nodes needed",
                                value=self.made["cached"] / nodes if nodes else 0.0)


async def _jobs(client: PrefectClient) -> dict[str, int]:
    counts = {}
    for status in (Status.queued, Status.started, Status.finished, Status.failed,
                   Status.canceled):
        counts[status.value] = await client.count_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=VIDEO_FLOWS)),
            flow_run_filter=FlowRunFilter(state=FlowRunFilterState(
                type=FlowRunFilterStateType(any_=STATE_TYPES[status]))))
    return counts
