"""The Prefect UI that `reelflow serve` opens, in a real browser: a person finds the make-video
deployment, starts a custom run for a topic, watches it complete and finds the link to the video
among the run's artifacts; then Ctrl-C stops serve and the server it started.

Prefect 3.8 serves its React UI (ui-v2, under /v2/) to a browser with no saved preference, so
that is the UI driven here, by roles, labels and visible text. Screenshots go to
$REELFLOW_TEST_ARTIFACTS/browser (default: test-artifacts/browser)."""

from __future__ import annotations

import contextlib
import os
import queue
import re
import signal
import socket
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import httpx
import psutil
import pytest
from playwright.sync_api import expect, sync_playwright
from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

from tests.test_cli_input import REELFLOW

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("REELFLOW_TEST_ARTIFACTS", REPO / "test-artifacts")) / "browser"
STARTUP_TIMEOUT_S = 180  # a cold server takes about 20 s here
STOP_TIMEOUT_S = 60  # serve gives its server 30 s to stop, then kills it
UI_TIMEOUT_MS = 30_000
RUN_TIMEOUT_MS = 180_000
TOPIC = "lighthouses"
# Settings that would point serve at another server or database than its own.
NOT_INHERITED = ("PREFECT_API_URL", "PREFECT_API_KEY", "PREFECT_PROFILE", "PREFECT_UI_API_URL",
                 "PREFECT_SERVER_UI_API_URL", "PREFECT_API_DATABASE_CONNECTION_URL",
                 "PREFECT_SERVER_DATABASE_CONNECTION_URL", "REELFLOW_PROFILE")

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"needs Debian's Chromium at {CHROMIUM} (`make browser` installs it)")


@dataclass
class Served:
    process: subprocess.Popen
    url: str  # the UI's; the API is under /api
    out: Path
    stderr: list[str] = field(default_factory=list)

    @property
    def api_url(self) -> str:
        return f"{self.url}/api"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def served(tmp_path: Path):
    """`reelflow serve` with no PREFECT_API_URL, so it starts its own server and UI, on a free
    port, with its own Prefect home (database), store and output folder."""
    port = free_port()
    env = {name: value for name, value in os.environ.items() if name not in NOT_INHERITED}
    env.update({"PREFECT_HOME": str(tmp_path / "prefect"),
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
                "REELFLOW_STORE": str(tmp_path / "store"), "REELFLOW_OUT": str(tmp_path / "out"),
                "REELFLOW_SHORT_SIDE": "180", "REELFLOW_FPS": "12"})
    with open(tmp_path / "serve.stdout", "w") as stdout:
        process = subprocess.Popen(  # SIGINT restored: it may be ignored in a background job
            [REELFLOW, "serve", "--port", str(port)], env=env, stdout=stdout,
            stderr=subprocess.PIPE, text=True,
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    lines: queue.Queue[str | None] = queue.Queue()

    def read_stderr() -> None:  # all of it, for as long as serve runs: a full pipe would block it
        for line in process.stderr:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=read_stderr, daemon=True).start()
    served = Served(process, f"http://127.0.0.1:{port}", tmp_path / "out")
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not served.stderr or not served.stderr[-1].startswith("Deployments:"):
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"serve said nothing of its deployments in {STARTUP_TIMEOUT_S} s:\n"
                            + "".join(served.stderr[-40:]))
            if line is None:
                pytest.fail(f"serve exited with {process.wait()}:\n" + "".join(served.stderr[-40:]))
            served.stderr.append(line)
        assert f"Prefect UI: {served.url}\n" in served.stderr
        yield served
    finally:
        if process.poll() is None:  # the test failed before its Ctrl-C: leave nothing behind
            serve = psutil.Process(process.pid)
            leftovers = [serve, *serve.children(recursive=True)]
            for leftover in leftovers:
                with contextlib.suppress(psutil.NoSuchProcess):
                    leftover.kill()
            psutil.wait_procs(leftovers, timeout=10)


def run_artifacts(api_url: str, flow_run_id: str) -> list:
    with SyncPrefectClient(api_url) as client:
        return client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))


def screenshot(page, name: str) -> Path:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_a_person_runs_make_video_from_the_prefect_ui_and_ctrl_c_stops_everything(served):
    started = time.monotonic()
    # Without this the UI would talk to whichever server answers on 127.0.0.1:4200, or none.
    ui_settings = httpx.get(f"{served.url}/ui-settings", timeout=10).json()
    assert ui_settings["api_url"] == served.api_url, (
        f"the UI calls {ui_settings['api_url']}, not the server serve started at {served.api_url}")

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS,
                                             headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        # Nothing from the internet: the UI's telemetry is refused, its fonts are served locally.
        context.route(lambda url: not url.startswith(served.url + "/"), lambda route: route.abort())
        context.set_default_timeout(UI_TIMEOUT_MS)
        page = context.new_page()

        page.goto(served.url)
        expect(page).to_have_url(re.compile(r"/v2/"))  # Prefect's default UI, the React one
        page.get_by_role("link", name="Deployments", exact=True).click()
        deployment_row = page.get_by_role("row").filter(
            has=page.get_by_role("link", name="make-video", exact=True))
        # The row links the deployment, then its flow (also named make-video).
        deployment_row.get_by_role("link", name="make-video", exact=True).first.click()
        expect(page).to_have_url(re.compile(r"/deployments/deployment/"))

        page.get_by_role("button", name="Run", exact=True).click()
        page.get_by_role("menuitem", name="Custom run").click()
        # topic is `str | None`: choose str, then type. Its label points at no input, so the
        # field is the innermost block holding both its label and its type tabs.
        topic = page.locator("div").filter(
            has=page.get_by_text("topic (Optional)", exact=True)).filter(
            has=page.get_by_role("tab", name="str", exact=True)).last
        topic.get_by_role("tab", name="str", exact=True).click()
        topic.get_by_role("textbox").fill(TOPIC)
        page.get_by_role("spinbutton", name="scenes (Optional)").fill("1")
        page.get_by_role("button", name="Submit").click()
        page.get_by_role("button", name="View run").click()  # in the "scheduled" notification

        expect(page).to_have_url(re.compile(r"/runs/flow-run/[0-9a-f-]{36}"))
        flow_run_id = re.search(r"/runs/flow-run/([0-9a-f-]{36})", page.url).group(1)
        submitted = time.monotonic()
        main = page.get_by_role("main")
        final_state = main.get_by_text(re.compile(r"^(Completed|Failed|Crashed|Cancelled)$"))
        expect(final_state).to_be_visible(timeout=RUN_TIMEOUT_MS)
        expect(final_state).to_have_text("Completed")
        ran_s = time.monotonic() - submitted
        # The flow names its run after the topic.
        expect(main.get_by_role("navigation", name="breadcrumb")).to_contain_text(f"make-{TOPIC}")
        screenshot(page, "run-completed.png")

        page.get_by_role("tab", name="Artifacts").click()
        video_card = main.get_by_role("link", name=re.compile("The published video"))
        expect(video_card).to_be_visible()
        screenshot(page, "run-artifacts.png")
        video_card.click()
        expect(main.get_by_text(re.compile(rf"^{TOPIC}: video$", re.IGNORECASE))).to_be_visible()
        show, hide = (page.get_by_role("button", name=name)
                      for name in ("Show Raw Data", "Hide Raw Data"))
        for _ in range(3):  # a click before the page attaches the button's handler does nothing
            if show.is_visible():
                show.click()
            try:
                expect(hide).to_be_visible(timeout=3000)
                break
            except AssertionError:
                continue
        expect(hide).to_be_visible()
        expect(main.get_by_text(re.compile(r"\]\(file://\S+/video\.mp4\)"))).to_be_visible()
        screenshot(page, "video-artifact.png")
        browser.close()
    print(f"browser: {time.monotonic() - started:.1f} s, of which the run {ran_s:.1f} s")

    # The same, through the API.
    with SyncPrefectClient(served.api_url) as client:
        flow_run = client.read_flow_run(flow_run_id)
    assert flow_run.state.is_completed(), flow_run.state.message
    assert flow_run.parameters["topic"] == TOPIC and flow_run.parameters["scenes"] == 1
    link = next(a for a in run_artifacts(served.api_url, flow_run_id)
                if a.description == "The published video")
    markdown = re.fullmatch(rf"\[{TOPIC}: video\]\((\S+/video\.mp4)\)", link.data, re.IGNORECASE)
    assert markdown, link.data  # a link artifact is markdown: [text](url)
    video = Path(unquote(urlparse(markdown.group(1)).path))
    assert video.is_file() and video.is_relative_to(served.out)

    # Ctrl-C stops serve and the server it started.
    tree = psutil.Process(served.process.pid).children(recursive=True)
    assert any("server" in child.cmdline() for child in tree), [c.cmdline() for c in tree]
    served.process.send_signal(signal.SIGINT)
    served.process.wait(STOP_TIMEOUT_S)
    gone, alive = psutil.wait_procs(tree, timeout=10)
    assert not alive, [process.cmdline() for process in alive]
    port = urlparse(served.url).port
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    print(f"serve exited with {served.process.returncode}; {len(gone)} child process(es) gone")
