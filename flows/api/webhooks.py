"""Webhooks: when a job that asked for one is over, its document is POSTed to the job's URL,
signed with an HMAC of the server's secret, and retried with backoff; the job itself never
waits for it. What is owed is kept in Prefect (a tag on the run, the URL in its labels), so
a restarted API still delivers it; a delivery whose answer was lost is sent again, so a
receiver should treat the job id and status as the event's identity."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import time
from collections.abc import Callable

import httpx
from prefect.client.orchestration import PrefectClient
from prefect.client.schemas.filters import (
    FlowRunFilter,
    FlowRunFilterState,
    FlowRunFilterStateType,
    FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun, StateType

from flows.api import jobs
from flows.api.jobs import WEBHOOK_LABEL, WEBHOOK_PENDING

SENT, GAVE_UP = "reelflow-webhook-sent", "reelflow-webhook-failed"
OVER = [StateType.COMPLETED, StateType.FAILED, StateType.CRASHED, StateType.CANCELLED]
ATTEMPTS = 6  # after the first: 2, 4, 8, 16, 32 s apart
POLL_SECONDS = 1.0
log = logging.getLogger("reelflow.api")


def signature(secret: str, timestamp: str, body: bytes) -> str:
    """`sha256=` and the HMAC of "TIMESTAMP.BODY": a receiver recomputes it with the secret
    and refuses old timestamps, so a captured delivery cannot be replayed later."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class Deliveries:
    def __init__(self, secret: str, video_url: Callable[[str], str]):
        self.secret, self.video_url = secret, video_url
        self.tries: dict[str, tuple[int, float]] = {}  # run id: attempts made, next attempt at

    async def run(self, client: PrefectClient) -> None:
        async with httpx.AsyncClient(timeout=10) as http:
            while True:
                try:
                    await self.deliver_due(client, http)
                except (httpx.HTTPError, OSError) as error:  # Prefect away for a moment
                    log.warning("webhooks: %s", error)
                await asyncio.sleep(POLL_SECONDS)

    async def deliver_due(self, client: PrefectClient, http: httpx.AsyncClient) -> None:
        owed = await client.read_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[WEBHOOK_PENDING]),
            state=FlowRunFilterState(type=FlowRunFilterStateType(any_=OVER))), limit=50)
        for run in owed:
            attempts, due = self.tries.get(str(run.id), (0, 0.0))
            if time.monotonic() >= due:
                await self.deliver(client, http, run, attempts)

    async def deliver(self, client: PrefectClient, http: httpx.AsyncClient, run: FlowRun,
                      attempts: int) -> None:
        document = await jobs.document(client, run, self.video_url(str(run.id)))
        body = document.model_dump_json().encode()
        timestamp = str(int(time.time()))
        try:
            answer = await http.post(run.labels[WEBHOOK_LABEL], content=body, headers={
                "Content-Type": "application/json", "X-Reelflow-Timestamp": timestamp,
                "X-Reelflow-Signature": signature(self.secret, timestamp, body)})
            delivered = answer.is_success
        except httpx.HTTPError:
            delivered = False
        if delivered or attempts + 1 >= ATTEMPTS:
            self.tries.pop(str(run.id), None)
            await client.update_flow_run(run.id, tags=[
                *(tag for tag in run.tags if tag != WEBHOOK_PENDING), SENT if delivered else GAVE_UP])
        else:
            self.tries[str(run.id)] = (attempts + 1, time.monotonic() + 2 ** (attempts + 1))
