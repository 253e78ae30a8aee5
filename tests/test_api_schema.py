"""The API never answers 500 to anything a client sends: every operation of its own OpenAPI
document, with inputs schemathesis generates from it, valid and invalid."""

from __future__ import annotations

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
from prefect.states import Cancelled
from schemathesis import GenerationMode

from flows.api.jobs import owner_tag
from flows.api.keys import digest
from tests.test_api import _start, _stop


def test_no_input_a_client_can_send_makes_the_api_fail(tmp_path, prefect_api_url):
    # No workers: a job that validates stays queued, and is cancelled below.
    api = _start(tmp_path, prefect_api_url, "--no-workers", api_requests_per_minute="100000",
                 api_jobs_at_once="3")
    failures, answered = [], 0
    try:
        schema = schemathesis.openapi.from_url(f"{api.url}/openapi.json")
        for result in schema.get_all_operations():
            operation = result.ok()
            for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
                @settings(max_examples=40, deadline=None, database=None,
                          suppress_health_check=list(HealthCheck))
                @given(case=operation.as_strategy(generation_mode=mode))
                def call(case):
                    nonlocal answered
                    response = case.call(base_url=api.url,
                                         headers={"Authorization": f"Bearer {api.keys[0]}"})
                    answered += 1
                    if response.status_code >= 500:
                        failures.append(f"{operation.method.upper()} {operation.path}: "
                                        f"{response.status_code} {response.text[:200]}")

                try:
                    call()
                except Unsatisfiable:  # an operation with nothing to make invalid
                    pass
    finally:
        _stop(api)
        with get_client(sync_client=True) as client:
            for run in client.read_flow_runs(flow_run_filter=FlowRunFilter(
                    tags=FlowRunFilterTags(all_=[owner_tag(digest(api.keys[0]))]))):
                if not run.state.is_final():
                    client.set_flow_run_state(run.id, Cancelled(), force=True)
    assert answered > 500
    assert failures == []
