"""The HTTP API as a client uses it: `reelflow api` on 127.0.0.1, a real Prefect server, httpx."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.streamable_http import streamable_http_client
from prefect.client.orchestration import get_client
from prefect.exceptions import ObjectNotFound
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterTags,
)

from flows.api.jobs import owner_tag
from flows.limits import provider_limits
from flows.api.keys import digest, new_key
from flows.api.webhooks import signature
from tasks.ffmpeg import probe
from tests.composing import segments_reading
from tests.conftest import SMALL
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS
from tests.test_cli_input import REELFLOW


WEBHOOK_SECRET = "test-webhook-secret"


@dataclass
class Api:
    url: str
    keys: list[str]
    process: subprocess.Popen
    out: Path

    def client(self, key: str | None = None) -> httpx.Client:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        return httpx.Client(base_url=self.url, headers=headers, timeout=30)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(folder: Path, prefect_api_url: str, *args: str, env: dict | None = None,
           keys: list[str] | None = None, tls: bool = False, **settings: str) -> Api:
    folder.mkdir(parents=True, exist_ok=True)
    keys = keys or [new_key()[0] for _ in range(2)]
    (folder / "keys").write_text("".join(f"{digest(key)}  # test key {n}\n"
                                         for n, key in enumerate(keys)))
    port = _free_port()
    env = {**os.environ, **SMALL, "PREFECT_API_URL": prefect_api_url,
           "REELFLOW_STORE": str(folder / "store"), "REELFLOW_OUT": str(folder / "out"),
           "REELFLOW_API_KEYS_FILE": str(folder / "keys"),
           **{f"REELFLOW_{name.upper()}": value for name, value in settings.items()},
           **(env or {})}
    env.pop("REELFLOW_PROFILE", None)
    process = subprocess.Popen([REELFLOW, "api", "--port", str(port), *args], env=env,
                               stderr=open(folder / "api.log", "w"))
    api = Api(f"{'https' if tls else 'http'}://127.0.0.1:{port}", keys, process, folder / "out")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # polling a process we started: no event to wait on
        assert process.poll() is None, (folder / "api.log").read_text()
        try:
            if httpx.get(f"{api.url}/healthz", timeout=2, verify=not tls).status_code == 200:
                return api
        except httpx.HTTPError:
            time.sleep(0.2)
    raise AssertionError("the API did not answer within 120 s")


def _stop(api: Api) -> None:
    """SIGTERM, as a service manager stops it: it stops serving and exits, in one piece.

    The provider concurrency limits it created on the session's Prefect server go too: left
    there, they throttle every later test's runs (a CLI run tags its tasks when they exist)."""
    api.process.terminate()
    assert api.process.wait(timeout=60) == 0, (api.out.parent / "api.log").read_text()[-2000:]
    with get_client(sync_client=True) as client:
        for tag in provider_limits():
            try:
                client.delete_concurrency_limit_by_tag(tag)
            except ObjectNotFound:
                pass


@pytest.fixture(scope="module")
def api(tmp_path_factory, prefect_api_url) -> Iterator[Api]:
    started = _start(tmp_path_factory.mktemp("api"), prefect_api_url,
                     api_webhook_secret=WEBHOOK_SECRET)
    yield started
    _stop(started)


def _wait(client: httpx.Client, job_id: str, until: set[str]) -> dict:
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:  # a client polls a job: that is the API's contract
        answer = client.get(f"/jobs/{job_id}")
        assert answer.status_code == 200, answer.text
        job = answer.json()
        if job["status"] in until:
            return job
        time.sleep(1)  # within the key's 120 requests a minute, with room for the test's own
    raise AssertionError(f"job {job_id} still {job['status']}")


def _runs_of(key: str) -> int:
    with get_client(sync_client=True) as client:
        return client.count_flow_runs(flow_run_filter=FlowRunFilter(
            tags=FlowRunFilterTags(all_=[owner_tag(digest(key))])))


def test_a_prompt_becomes_a_job_then_a_video_a_player_can_seek_in(api):
    with api.client(api.keys[0]) as client:
        made = client.post("/jobs", json={"prompt": "Why the sky is blue", "scenes": 2,
                                          "music": False})
        assert made.status_code == 202, made.text
        accepted = made.json()
        assert accepted["status"] == "queued" and accepted["id"]
        assert made.headers["x-request-id"]

        job = _wait(client, accepted["id"], {"finished", "failed", "canceled"})
        assert job["status"] == "finished", job
        assert job["progress"] == 100 and job["generated"] > 0 and job["cost_usd"] == 0
        assert job["video_url"] == f"{api.url}/jobs/{accepted['id']}/video"
        assert [j["id"] for j in client.get("/jobs").json()][0] == accepted["id"]

        video = client.get(f"/jobs/{accepted['id']}/video")
        assert video.status_code == 200 and video.headers["content-type"] == "video/mp4"
        saved = api.out.parent / "downloaded.mp4"
        saved.write_bytes(video.content)
        info = probe(saved)
        assert info.has_video and info.has_audio and info.duration > 1
        part = client.get(f"/jobs/{accepted['id']}/video", headers={"Range": "bytes=100-199"})
        assert part.status_code == 206 and part.content == video.content[100:200]
        assert part.headers["content-range"] == f"bytes 100-199/{len(video.content)}"

        board = client.get(f"/jobs/{accepted['id']}/storyboard").json()
        assert len(board["scenes"]) == 2
        manifest = client.get(f"/jobs/{accepted['id']}/manifest").json()
        assert manifest["video_digest"]
        # A signed link plays without a key (a <video> element sends none), until it expires.
        link = client.get(f"/jobs/{accepted['id']}/video-url",
                          params={"expiration_seconds": 120}).json()["url"]
        assert link.startswith(f"{api.url}/jobs/{accepted['id']}/video?expires=")
        assert httpx.get(link).content == video.content
        for forged in (link[:-1] + ("0" if link[-1] != "0" else "1"), link[:-1] + "é",
                       link.replace("expires=", "expires=1")):
            assert httpx.get(forged).status_code == 401
        with get_client(sync_client=True) as prefect:  # the UI's link is one of those too
            shown = next(a for a in prefect.read_artifacts(artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[accepted["id"]])))
                if a.type == "markdown" and "/video?expires=" in a.data)
        ui_link = shown.data[shown.data.index("](") + 2:-1]
        assert httpx.get(ui_link).content == video.content
        finished_again = client.post(f"/jobs/{accepted['id']}/cancel")
        assert finished_again.status_code == 409

        # One request changes one scene: a new job that generates that scene's voice alone.
        scene = board["scenes"][1]["id"]
        assert client.patch(f"/jobs/{accepted['id']}/scenes/s999",
                            json={"narration": "Hi."}).status_code == 404
        assert client.patch(f"/jobs/{accepted['id']}/scenes/{scene}",
                            json={}).status_code == 422
        edit = client.patch(f"/jobs/{accepted['id']}/scenes/{scene}",
                            json={"narration": "Sunsets are red for the same reason."})
        assert edit.status_code == 202, edit.text
        again = _wait(client, edit.json()["id"], {"finished", "failed", "canceled"})
        assert again["status"] == "finished", again
        nodes = client.get(f"/jobs/{again['id']}/manifest").json()["nodes"]
        edited_board = client.get(f"/jobs/{again['id']}/storyboard").json()
        assert {node["id"] for node in nodes if node["status"] == "generated"} == {
            f"{scene}-l1-tts", *segments_reading(edited_board, scene), "compose", "publish"}
        assert edited_board["scenes"][1]["lines"][0]["text"] == (
            "Sunsets are red for the same reason.")

        # Scene operations: a dry run says what a trim and a retake would make; then they do.
        first = board["scenes"][0]["id"]
        edits = {"operations": [{"op": "trim", "scene": first, "start": 0.2, "end": 1.0},
                                {"op": "retake", "scene": scene, "media": ["image"]}]}
        preview = client.post(f"/jobs/{again['id']}/edits", json={**edits, "dry_run": True})
        assert preview.status_code == 200, preview.text
        planned = {node["id"] for node in preview.json()["nodes"] if not node["stored"]}
        assert {f"{scene}-image", f"{scene}-clip", "compose"} <= planned
        assert not {f"{first}-l1-tts", f"{first}-image", f"{first}-clip"} & planned
        jobs_before = len(client.get("/jobs").json())
        for bad, status in (({"operations": [{"op": "delete", "scene": "s999"}]}, 404),
                            ({"operations": [{"op": "trim", "scene": first, "start": 0,
                                              "end": 0.1}]}, 422),
                            ({"revert": {"version": 9}}, 404),
                            ({"operations": [{"op": "explode", "scene": first}]}, 422)):
            refused = client.post(f"/jobs/{again['id']}/edits", json=bad)
            assert refused.status_code == status, (bad, refused.text)
        assert len(client.get("/jobs").json()) == jobs_before  # no job for a refusal
        shaped = client.post(f"/jobs/{again['id']}/edits", json=edits)
        assert shaped.status_code == 202, shaped.text
        done = _wait(client, shaped.json()["id"], {"finished", "failed", "canceled"})
        assert done["status"] == "finished", done
        nodes = client.get(f"/jobs/{done['id']}/manifest").json()["nodes"]
        assert {node["id"] for node in nodes
                if node["status"] == "generated" and node["kind"] != "publish"} == planned


def test_without_a_valid_key_nothing_is_said_and_another_keys_job_does_not_exist(api):
    with api.client(api.keys[0]) as owner:
        job = owner.post("/jobs", json={"prompt": "Tides", "scenes": 1, "music": False}).json()
    refusals = []
    for headers in [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {api.keys[0]}"},
                    {"Authorization": api.keys[0]}]:
        answer = httpx.get(f"{api.url}/jobs/{job['id']}", headers=headers)
        assert answer.status_code == 401
        body = answer.json()
        refusals.append((body["error"], body["message"]))
        assert api.keys[0] not in answer.text
    assert len(set(refusals)) == 1  # the same answer whatever was wrong
    with api.client(api.keys[1]) as other:
        assert other.get(f"/jobs/{job['id']}").status_code == 404
        assert other.post(f"/jobs/{job['id']}/cancel").status_code == 404
        assert job["id"] not in [j["id"] for j in other.get("/jobs").json()]
        unknown = other.get("/jobs/not-a-job")
        assert unknown.status_code == 404 and unknown.json()["error"] == "not_found"
    log = (api.out.parent / "api.log").read_text()
    assert all(key not in log for key in api.keys)
    assert json.loads(next(line for line in log.splitlines() if '"status": 401' in line))[
        "key"] is None


def test_a_key_added_to_the_file_works_at_once_and_a_removed_one_stops(api):
    file = api.out.parent / "keys"
    before = file.read_text()
    added = new_key()[0]
    try:
        assert api.client(added).get("/jobs").status_code == 401
        file.write_text(before + digest(added) + "\n")
        assert api.client(added).get("/jobs").status_code == 200
        file.write_text(before + "not a hash\n")  # a broken file keeps the keys read before
        assert api.client(added).get("/jobs").status_code == 200
        file.write_text(before)
        assert api.client(added).get("/jobs").status_code == 401
    finally:
        file.write_text(before)
    assert api.client(api.keys[0]).get("/jobs").status_code == 200


@pytest.mark.parametrize("body,field", [
    ({"prompt": ""}, "prompt"),
    ({"prompt": "   "}, "prompt"),
    ({"prompt": "x" * 2001}, "prompt"),
    ({"prompt": "bees", "colour": "red"}, "colour"),
    ({"prompt": "bees", "scenes": "many"}, "scenes"),
    ({"prompt": "bees", "scenes": 0}, "scenes"),
    ({"prompt": "bees", "style": "sepia"}, "style"),
    ({"prompt": "bees", "profile": "nope"}, "profile"),
    ({"prompt": "bees", "cast": ["nobody"]}, "cast"),
    ({"prompt": "bees", "language": "xx-nonsense"}, "language"),
    ({"prompt": "bees", "language": "en", "voice": "fr"}, "voice"),
    ({"prompt": "bees", "creative": {"director": "wes-anderson"}}, "creative.director"),
    ({"prompt": "bees", "creative": {"mode": "ad", "product": "Aurora"}}, "creative.cta"),
    ({"prompt": "bees", "creative": {"mode": "music-video", "track": "/no/such/song.mp3"}},
     "track: '/no/such/song.mp3' does not exist"),
    ({"storyboard": {"title": "t", "language": "en", "voice": "de", "scenes": [
        {"id": "s1", "order": 0, "lines": [{"text": "Hi."}], "visual_prompt": "sky",
         "duration": 3}]}}, "voice"),
    ({}, "body"),
    ({"prompt": "bees", "storyboard": {"title": "t", "scenes": [
        {"id": "s1", "order": 0, "lines": [{"text": "Hi."}], "visual_prompt": "sky",
         "duration": 3}]}}, "body"),
    ({"storyboard": {"title": "t", "scenes": [{"id": "s1"}]}}, "storyboard"),
])
def test_bad_input_is_a_4xx_naming_the_field_and_creates_no_job(api, body, field):
    before = _runs_of(api.keys[1])
    with api.client(api.keys[1]) as client:
        answer = client.post("/jobs", json=body)
    assert answer.status_code == 422, answer.text
    error = answer.json()
    assert set(error) == {"error", "message", "details", "timestamp", "request_id", "retryable"}
    assert error["message"].startswith(field), error
    assert error["request_id"] == answer.headers["x-request-id"]
    assert _runs_of(api.keys[1]) == before


def test_malformed_json_a_wrong_content_type_and_a_huge_body_are_refused(api):
    before = _runs_of(api.keys[1])
    with api.client(api.keys[1]) as client:
        broken = client.post("/jobs", content=b'{"prompt": "bees"',
                             headers={"Content-Type": "application/json"})
        assert broken.status_code == 422 and broken.json()["message"].startswith("body")
        form = client.post("/jobs", data={"prompt": "bees"})
        assert form.status_code in (415, 422), form.text
        huge = client.post("/jobs", json={"prompt": "bees", "voice": "x" * 1_100_000})
        assert huge.status_code == 413 and huge.json()["error"] == "too_large"
    assert _runs_of(api.keys[1]) == before


def test_health_readiness_and_the_openapi_document(api):
    assert httpx.get(f"{api.url}/healthz").json() == {"status": "ok"}
    assert httpx.get(f"{api.url}/readyz").json() == {"status": "ready"}
    document = httpx.get(f"{api.url}/openapi.json").json()
    assert {"/jobs", "/jobs/{job_id}", "/jobs/{job_id}/video"} <= set(document["paths"])


def _scraped(api: Api) -> dict[str, list]:
    from prometheus_client.parser import text_string_to_metric_families

    scraped = httpx.get(f"{api.url}/metrics/prometheus")
    assert scraped.status_code == 200 and scraped.headers["content-type"].startswith("text/plain")
    samples = {}
    for family in text_string_to_metric_families(scraped.text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append(sample)
    return samples


def test_metrics_count_requests_jobs_and_what_the_videos_cost(api):
    def make_tides() -> None:  # the same job each time: all but the first reuse everything
        with api.client(api.keys[0]) as client:
            job = client.post("/jobs", json={"prompt": "Tides", "scenes": 1, "music": False})
            _wait(client, job.json()["id"], {"finished"})

    # What earlier runs on this Prefect server spent (cloud fakes' renders, in other tests).
    spent = _scraped(api).get("reelflow_provider_cost_usd_total")
    spent_before = spent[0].value if spent else 0.0
    make_tides()
    make_tides()
    samples = _scraped(api)
    created = [s for s in samples["reelflow_api_requests_total"]
               if s.labels == {"route": "/jobs", "method": "POST", "status": "202"}]
    assert created and created[0].value >= 1
    assert any(s.labels.get("route") == "/jobs/{job_id}"
               for s in samples["reelflow_api_request_seconds_count"])  # never a raw id
    finished = next(s for s in samples["reelflow_jobs"] if s.labels == {"status": "finished"})
    assert finished.value >= 1
    videos = samples["reelflow_videos_made_total"][0].value
    assert videos >= 1
    assert samples["reelflow_provider_cost_usd_total"][0].value == spent_before  # offline: free
    assert 0 < samples["reelflow_cache_hit_ratio"][0].value <= 1
    # A later scrape reads only what was published since, and counts it once.
    make_tides()
    assert _scraped(api)["reelflow_videos_made_total"][0].value == videos + 1
    assert _scraped(api)["reelflow_videos_made_total"][0].value == videos + 1


def test_a_key_over_its_rate_gets_429_with_retry_after_and_a_queued_job_cancels(
        tmp_path, prefect_api_url):
    # No workers here: a job stays queued until it is cancelled.
    api = _start(tmp_path / "limited", prefect_api_url, "--no-workers",
                 api_requests_per_minute="3")
    try:
        with api.client(api.keys[0]) as client:
            job = client.post("/jobs", json={"prompt": "Kelp", "scenes": 1}).json()
            cancelled = client.post(f"/jobs/{job['id']}/cancel")
            assert cancelled.status_code == 202 and cancelled.json()["status"] == "canceled"
            assert client.get(f"/jobs/{job['id']}").json()["status"] == "canceled"
            limited = client.get("/jobs")
            assert limited.status_code == 429
            assert int(limited.headers["retry-after"]) >= 1
            assert limited.json()["retryable"] is True
        with api.client(api.keys[1]) as other:  # limits are per key
            assert other.get("/jobs").status_code == 200
    finally:
        _stop(api)


def test_the_same_idempotency_key_and_body_give_the_same_job(api):
    body = {"prompt": "Tides", "scenes": 1, "music": False}
    with api.client(api.keys[1]) as client:
        first, again = (client.post("/jobs", json=body, headers={"Idempotency-Key": "order-7"})
                        for _ in range(2))
        other = client.post("/jobs", json={**body, "seed": 1},
                            headers={"Idempotency-Key": "order-7"})
    assert first.status_code == again.status_code == other.status_code == 202
    assert first.json()["id"] == again.json()["id"] != other.json()["id"]


class Receiver(BaseHTTPRequestHandler):
    """A webhook receiver that fails its first delivery, as a real one sometimes does."""

    deliveries: list[tuple[int, dict, bytes]] = []
    arrived = threading.Event()

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        status = 500 if not self.deliveries else 200
        self.deliveries.append((status, dict(self.headers), body))
        self.send_response(status)
        self.end_headers()
        if status == 200:
            self.arrived.set()

    def log_message(self, *args):
        pass


def test_a_webhook_arrives_once_signed_and_is_retried_when_the_receiver_fails(api):
    receiver = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{receiver.server_port}/hook"
        with api.client(api.keys[0]) as client:
            job = client.post("/jobs", json={"prompt": "Otters", "scenes": 1, "music": False,
                                             "webhook": url}).json()
            assert Receiver.arrived.wait(240), Receiver.deliveries
            finished = client.get(f"/jobs/{job['id']}").json()
    finally:
        receiver.shutdown()
    assert [status for status, _, _ in Receiver.deliveries] == [500, 200]
    _, headers, body = Receiver.deliveries[-1]
    assert json.loads(body) == finished and finished["status"] == "finished"
    assert headers["X-Reelflow-Signature"] == signature(
        WEBHOOK_SECRET, headers["X-Reelflow-Timestamp"], body)
    with get_client(sync_client=True) as prefect:  # nothing more is owed: it is sent once
        tags = prefect.read_flow_run(job["id"]).tags
    assert "reelflow-webhook-sent" in tags and "reelflow-webhook" not in tags


@pytest.mark.skipif(not CHROMIUM.exists(), reason=f"needs Debian's Chromium at {CHROMIUM} "
                    "(`make browser` installs it)")
def test_a_browser_plays_a_jobs_video_from_its_link_and_seeks_in_it(api):
    from playwright.sync_api import sync_playwright

    with api.client(api.keys[0]) as client:
        job = client.post("/jobs", json={"prompt": "Puffins", "scenes": 2, "music": False})
        _wait(client, job.json()["id"], {"finished"})
        link = client.get(f"/jobs/{job.json()['id']}/video-url").json()["url"]
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.set_content(f'<video id="v" src="{link}" muted preload="auto"></video>')
            page.wait_for_function("document.getElementById('v').readyState >= 1",
                                   timeout=30_000)
            duration = page.evaluate("document.getElementById('v').duration")
            assert duration > 1
            page.evaluate("document.getElementById('v').play()")
            page.wait_for_function("document.getElementById('v').currentTime > 0.2",
                                   timeout=30_000)
            seeked = page.evaluate("""(to) => new Promise(done => {
                const video = document.getElementById('v');
                video.addEventListener('seeked', () => done(video.currentTime), {once: true});
                video.currentTime = to;
            })""", duration * 0.75)
            assert abs(seeked - duration * 0.75) < 0.5
            assert page.evaluate("document.getElementById('v').error") is None
        finally:
            browser.close()
    answered = [json.loads(line) for line in (api.out.parent / "api.log").read_text().splitlines()
                if line.startswith("{") and '"/jobs/{job_id}/video"' in line]
    assert any(line["status"] == 206 and line["key"] is None for line in answered)  # ranges


def _mcp_over_http(api: Api, key: str | None) -> Client:
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    return Client(streamable_http_client(
        f"{api.url}/mcp", http_client=httpx2.AsyncClient(headers=headers, timeout=30)))


def _result(called) -> dict:
    assert not called.is_error, called.content
    return called.structured_content


def test_an_agent_makes_and_edits_a_video_through_the_mcp_tools_over_http_and_stdio(api):
    tools = {"make_video", "job_status", "cancel_job", "edit_scene", "shape_video",
             "list_styles", "list_characters"}

    async def over_http() -> str:
        async with _mcp_over_http(api, api.keys[0]) as agent:
            listed = {tool.name: tool for tool in (await agent.list_tools()).tools}
            assert set(listed) == tools
            # The tool takes the API's own request: its limits are in the schema an agent sees.
            assert listed["make_video"].input_schema["properties"]["prompt"]["anyOf"][0][
                "maxLength"] == 2000
            styles = _result(await agent.call_tool("list_styles"))["result"]
            assert "documentary" in [style["name"] for style in styles]
            cast = _result(await agent.call_tool("list_characters"))["result"]
            assert {"mira", "otto", "juno"} <= {person["id"] for person in cast}
            assert all("references" not in person for person in cast)  # no server paths

            refused = await agent.call_tool("make_video", {"prompt": "bees", "style": "sepia"})
            assert refused.is_error
            refused = await agent.call_tool("make_video", {"prompt": "bees", "cast": ["nobody"]})
            assert refused.is_error and "cast" in refused.content[0].text

            made = _result(await agent.call_tool("make_video", {
                "prompt": "Why leaves turn red", "scenes": 1, "music": False}))
            assert made["status"] == "queued"
            job = made
            while job["status"] not in ("finished", "failed", "canceled"):
                await asyncio.sleep(1)  # an agent polls a job: that is the API's contract
                job = _result(await agent.call_tool("job_status", {"job_id": made["id"]}))
            assert job["status"] == "finished", job
            # The link needs no key: an agent can hand it to a person.
            assert httpx.get(job["video_url"]).headers["content-type"] == "video/mp4"

            board = api.client(api.keys[0]).get(f"/jobs/{made['id']}/storyboard").json()
            scene = board["scenes"][0]["id"]
            edited = _result(await agent.call_tool("edit_scene", {
                "job_id": made["id"], "scene_id": scene, "visual_prompt": "a red maple leaf"}))
            assert edited["id"] != made["id"]
            missing = await agent.call_tool("edit_scene", {
                "job_id": made["id"], "scene_id": "s999", "narration": "Hi."})
            assert missing.is_error and "s999" in missing.content[0].text
            # An agent asks what a retake would cost before it asks for one.
            preview = _result(await agent.call_tool("shape_video", {
                "job_id": made["id"], "dry_run": True,
                "operations": [{"op": "retake", "scene": scene, "media": ["image"]}]}))
            assert {f"{scene}-image", f"{scene}-clip"} <= {
                node["id"] for node in preview["nodes"] if not node["stored"]}
        async with _mcp_over_http(api, api.keys[1]) as stranger:
            other = await stranger.call_tool("job_status", {"job_id": made["id"]})
            assert other.is_error and "no job" in other.content[0].text
        return edited["id"], scene

    edit_job, scene = asyncio.run(over_http())
    assert httpx.post(f"{api.url}/mcp", json={}).status_code == 401

    async def over_stdio() -> None:
        local = StdioServerParameters(command=REELFLOW, args=["mcp"], env={
            **os.environ, "REELFLOW_API_URL": api.url, "REELFLOW_API_KEY": api.keys[0]})
        async with Client(local) as agent:
            assert {tool.name for tool in (await agent.list_tools()).tools} == tools
            job = _result(await agent.call_tool("job_status", {"job_id": edit_job}))
            while job["status"] not in ("finished", "failed", "canceled"):
                await asyncio.sleep(1)
                job = _result(await agent.call_tool("job_status", {"job_id": edit_job}))
            assert job["status"] == "finished" and job["generated"] > 0, job
            canceled = await agent.call_tool("cancel_job", {"job_id": edit_job})
            assert canceled.is_error and "already over" in canceled.content[0].text

    asyncio.run(over_stdio())
    with api.client(api.keys[0]) as client:
        nodes = client.get(f"/jobs/{edit_job}/manifest").json()["nodes"]
        board = client.get(f"/jobs/{edit_job}/storyboard").json()
    assert {node["id"] for node in nodes if node["status"] == "generated"} == {
        f"{scene}-image", f"{scene}-clip", *segments_reading(board, scene), "compose", "publish"}
