"""A cloud render through flaky providers: 30% of calls answer 429/500/503 (some with
Retry-After) or drop the connection. The run completes, every node is paid for exactly once,
and the retries stay within each node's attempt budget."""

from __future__ import annotations

import json
import random

import pytest

from flows.video import make_video
from tests.fakes.elevenlabs import TTS_PATH
from tests.fakes.google import FETCH, GENERATE, PREDICT
from tests.fakes.server import RESET, Response
from tests.test_cloud_render import cloud  # noqa: F401  (a fixture)

pytestmark = pytest.mark.usefixtures("prefect_api_url", "workspace")

ATTEMPTS = 4  # the providers' default `attempts`


def flaky(rng: random.Random, calls: int, rate: float = 0.3) -> list:
    """`calls` scripted answers: a fault with probability `rate`, else None (answer normally)."""
    faults = [Response.json({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                       "message": "slow down"}}, 429, {"Retry-After": "0"}),
              Response.json({"error": {"code": 500, "status": "INTERNAL", "message": "oops"}},
                            500),
              Response.json({"error": {"code": 503, "status": "UNAVAILABLE",
                                       "message": "busy"}}, 503),
              RESET]
    # Never ATTEMPTS faults in a row: a node must be able to succeed within its budget.
    script, run = [], 0
    for _ in range(calls):
        fault = rng.random() < rate and run < ATTEMPTS - 1
        script.append(rng.choice(faults) if fault else None)
        run = run + 1 if fault else 0
    return script


@pytest.mark.parametrize("seed", [7])
def test_a_render_through_flaky_providers_completes_and_pays_each_node_once(
        cloud, seed, monkeypatch):  # noqa: F811
    # One call at a time per provider, so each route meets the seeded script in one order.
    monkeypatch.setenv("REELFLOW_PROVIDER_CONCURRENCY", json.dumps(
        dict.fromkeys(["gemini", "gemini-image", "elevenlabs", "veo", "replicate"], 1)))
    rng = random.Random(seed)
    google, eleven = cloud["google"], cloud["eleven"]
    for pattern in (GENERATE, PREDICT, FETCH):
        google.fail("POST", pattern, flaky(rng, 40))
    eleven.server.fail("POST", TTS_PATH, flaky(rng, 40))

    summary = make_video(topic="storm petrels", scenes=3)

    nodes = json.loads(summary.manifest.read_text())["nodes"]
    served = {node["id"]: node["provider"] for node in nodes}
    assert {served[f"s00{i}-clip"] for i in (1, 2, 3)} == {"veo"}, [n["fallbacks"] for n in nodes]
    # Paid once: one billed success per generated node.
    assert google.billed["text"] == 1 and google.billed["image"] == 3
    assert eleven.billable == 3
    assert len([op for op in google.calls("POST", PREDICT)]) <= 3 * ATTEMPTS
    assert len(google.calls("POST", GENERATE)) <= 4 * ATTEMPTS
    assert len(eleven.server.calls("POST", TTS_PATH)) <= 3 * ATTEMPTS
    faults = sum(1 for call in google.calls() + eleven.server.calls()) - (1 + 3 + 3 + 3)
    print(f"faults injected and absorbed: {faults}")
    assert faults > 0
