"""The web page `reelflow api` serves at /, as a person uses it: a real API server on
127.0.0.1 with a real Prefect server behind it, driven by Debian's Chromium through
Playwright, by roles and accessible names. Screenshots of each page at a laptop's and a
phone's size go to $REELFLOW_TEST_ARTIFACTS/web (default: test-artifacts/web)."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tasks.ffmpeg import run_ffmpeg
from tests.test_api import Api, _runs_of, _start, _stop, _wait
from tests.test_browser import CHROMIUM, CHROMIUM_ARGS

REPO = Path(__file__).resolve().parents[1]
SCREENSHOTS = Path(os.environ.get("REELFLOW_TEST_ARTIFACTS", REPO / "test-artifacts")) / "web"
SIZES = {"laptop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}
RENDER_MS = 300_000  # a two-scene video here takes 20-60 s; a busy machine, longer
UI_MS = 30_000

pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"needs Debian's Chromium at {CHROMIUM} (`make browser` installs it)")


@pytest.fixture(scope="module")
def web(tmp_path_factory, prefect_api_url) -> Iterator[Api]:
    # Pages poll while a video renders: more than an API client's 120 requests a minute.
    started = _start(tmp_path_factory.mktemp("web"), prefect_api_url,
                     api_requests_per_minute="2000")
    yield started
    _stop(started)


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def _signed_in(browser: Browser, web: Api, key: str, size: str = "laptop") -> Page:
    page = browser.new_context(viewport=SIZES[size]).new_page()
    page.set_default_timeout(UI_MS)
    page.goto(web.url + "/")
    page.get_by_label("API key").fill(key)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Your videos")).to_be_visible()
    return page


def _finished(page: Page) -> None:
    """Wait for the video page to show its player: the page reloads itself when it is done."""
    expect(page.get_by_label("Video", exact=True)).to_be_visible(timeout=RENDER_MS)


def _run_it(page: Page) -> str:
    """Confirm the change the page shows; the new job's id once its video is made."""
    before = _job_id(page)
    page.get_by_role("button", name="Run it").click()
    expect(page).not_to_have_url(re.compile(before))
    _finished(page)
    return _job_id(page)


def _plays(page: Page) -> float:
    """Play the page's video from the start; its duration once it played a little."""
    player = page.get_by_label("Video", exact=True)
    player.evaluate("""video => new Promise((played, failed) => {
        video.addEventListener("timeupdate", function advanced() {
            if (video.currentTime > 0.3) { video.removeEventListener("timeupdate", advanced);
                                           played(); }
        });
        video.addEventListener("error", () => failed(video.error.message));
        video.muted = true; video.currentTime = 0; video.play();
    })""")
    assert player.evaluate("video => video.error") is None
    return player.evaluate("video => video.duration")


def _screenshot(page: Page, name: str, locator=None) -> None:
    """The page (or one part of it) once its pictures are drawn."""
    page.evaluate("Promise.all([...document.images].map(img => img.decode().catch(() => 0)))")
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    size = page.viewport_size
    path = SCREENSHOTS / f"{name}-{size['width']}x{size['height']}.png"
    (locator or page).screenshot(path=str(path), **({} if locator else {"full_page": True}))


def _job_id(page: Page) -> str:
    return re.search(r"/videos/([0-9a-f-]{36})", page.url)[1]


def _will_make(page: Page) -> list[dict]:
    """The dry run the page shows before a change runs: the nodes it would generate."""
    pending = page.get_by_role("region", name="Before it runs")
    expect(pending).to_be_visible()
    items = pending.get_by_role("list", name="Will be generated").get_by_role("listitem")
    said = [re.match(r"(\w+)(?: · (s\d+))? (\S+)", text) for text in items.all_inner_texts()]
    return [{"kind": found[1], "scene": found[2], "id": found[3]} for found in said]


def _manifest(web: Api, key: str, job_id: str) -> dict:
    with web.client(key) as client:
        answer = client.get(f"/jobs/{job_id}/manifest")
        assert answer.status_code == 200, answer.text
        return answer.json()


def _generated(manifest: dict) -> list[tuple[str, str | None]]:
    return sorted((node["kind"], node["scene"]) for node in manifest["nodes"]
                  if node["status"] == "generated" and node["kind"] != "publish")


def test_a_person_makes_a_video_watches_it_and_rewrites_one_scene(web, browser):
    page = _signed_in(browser, web, web.keys[0])
    page.get_by_role("link", name="Make a video").click()
    page.get_by_label("Topic").fill("How bees make honey")
    page.get_by_label("Scenes").fill("2")
    polled = []

    def watched(route):  # every answer the page's progress poll gets, read as it passes
        answer = route.fetch()
        polled.append(answer.json())
        route.fulfill(response=answer)

    page.route("**/progress", watched)
    videos = []
    page.on("response", lambda response: videos.append((response.url, response.status,
                                                         response.request.headers.get("range")))
            if "/video?" in response.url else None)
    page.get_by_role("button", name="Make video").click()
    expect(page.get_by_role("region", name="Progress")).to_be_visible()
    first = _job_id(page)
    _finished(page)
    assert polled, "the page never asked how far the render was"
    assert polled[-1]["over"] and polled[-1]["progress"] == 100
    done = {kind["kind"]: kind for kind in polled[-1]["kinds"]}
    assert done["publish"]["done"] == 1 and done["tts"]["done"] == done["tts"]["total"] == 2

    # Play, then seek: the player asks the API's video route for ranges.
    duration = _plays(page)
    assert duration > 2
    page.get_by_label("Video", exact=True).evaluate(
        "(video, to) => new Promise(done => { video.addEventListener('seeked', done, "
        "{once: true}); video.currentTime = to; })", duration * 0.8)
    ranges = [(status, asked) for url, status, asked in videos if f"/jobs/{first}/video" in url]
    assert any(status == 206 and asked for status, asked in ranges), ranges
    for size in SIZES:
        page.set_viewport_size(SIZES[size])
        _screenshot(page, "video")
        _screenshot(page, "scene-card", page.get_by_role("region", name="Scene 1"))

    # Rewrite scene 2's narration on its card: the dry run names only that scene's speech.
    scene = page.get_by_role("region", name="Scene 2")
    old_words = scene.get_by_label("Narration", exact=True).input_value()
    scene.get_by_label("Narration", exact=True).fill(
        "Bees fan the nectar with their wings until it thickens into honey.")
    scene.get_by_role("button", name="Save scene").click()
    planned = _will_make(page)
    scene_id = page.get_by_role("region", name="Scene 2").get_attribute("data-scene")
    assert [(n["kind"], n["scene"]) for n in planned if n["kind"] not in ("segment", "compose")] \
        == [("tts", scene_id)]
    assert any(n["kind"] == "compose" for n in planned)
    second = _run_it(page)
    done = {kind["kind"]: kind for kind in polled[-1]["kinds"]}  # the edit's job, at its end
    assert done["image"]["reused"] == done["image"]["total"] == 2
    assert done["tts"]["reused"] == 1 and done["tts"]["cost_usd"] == 0
    made = _generated(_manifest(web, web.keys[0], second))
    assert [entry for entry in made if entry[0] not in ("segment", "compose")] \
        == [("tts", scene_id)]
    assert ("compose", None) in made
    words = page.get_by_role("region", name="Scene 2").get_by_label(
        "Narration", exact=True).input_value()
    assert words.startswith("Bees fan the nectar") and words != old_words
    assert f"/jobs/{second}/video" in page.get_by_label("Video", exact=True).get_attribute("src")
    _plays(page)
    page.goto(web.url + "/")
    for size in SIZES:
        page.set_viewport_size(SIZES[size])
        _screenshot(page, "videos")
    rows = page.get_by_role("list", name="Videos").get_by_role("listitem")
    expect(rows).to_have_count(2)
    assert rows.first.get_by_role("link").get_attribute("href") == f"/videos/{second}"
    expect(rows.nth(1).get_by_role("link")).to_have_attribute("href", f"/videos/{first}")
    status, length, cost, date = rows.first.locator(".facts > *").all_inner_texts()
    assert (status.lower(), cost) == ("finished", "$0.0000")
    assert re.fullmatch(r"\d+\.\d s", length)
    assert re.fullmatch(r"20\d\d-\d\d-\d\d \d\d:\d\d UTC", date)
    thumbnail = rows.first.locator("img")  # the new cut's: a frame of it, from the store
    expect(thumbnail).to_be_visible()
    assert thumbnail.evaluate("img => img.decode().then(() => img.naturalWidth)") > 0


@pytest.fixture(scope="module")
def finished(web) -> str:
    """A finished two-scene video of the first key, made through the API."""
    with web.client(web.keys[0]) as client:
        made = client.post("/jobs", json={"prompt": "Lighthouses at night", "scenes": 2,
                                          "music": False})
        assert made.status_code == 202, made.text
        assert _wait(client, made.json()["id"], {"finished", "failed"})["status"] == "finished"
        return made.json()["id"]


def test_trim_with_the_keyboard_then_another_take_and_back_to_the_first_for_nothing(
        web, browser, finished):
    page = _signed_in(browser, web, web.keys[0])
    page.goto(f"{web.url}/videos/{finished}")
    scene = page.get_by_role("region", name="Scene 1")
    before = float(scene.locator("output.length").get_attribute("data-seconds"))
    end = scene.get_by_label("Trim end")
    clip, step = float(end.get_attribute("max")), float(end.get_attribute("step"))
    assert step == pytest.approx(0.1, abs=0.01) and before == pytest.approx(clip, abs=0.05)
    end.focus()
    for _ in range(10):  # a step each
        end.press("ArrowLeft")
    scene.get_by_role("button", name="Trim scene").click()
    planned = _will_make(page)
    assert {n["kind"] for n in planned} == {"segment", "compose"}  # nothing else anew
    _run_it(page)
    scene = page.get_by_role("region", name="Scene 1")
    after = float(scene.locator("output.length").get_attribute("data-seconds"))
    assert after == pytest.approx(clip - 10 * step, abs=0.01)
    assert before - after == pytest.approx(1.0, abs=0.1)
    # The start handle moved alone leaves the end where it was.
    assert float(scene.get_by_label("Trim end").input_value()) == pytest.approx(after, abs=0.01)

    scene.get_by_role("button", name="Another picture").click()
    planned = _will_make(page)
    scene_id = scene.get_attribute("data-scene")
    assert ("image", scene_id) in [(n["kind"], n["scene"]) for n in planned]
    _run_it(page)
    gallery = page.get_by_role("region", name="Scene 1").get_by_role("list",
                                                                     name="Picture takes")
    expect(gallery.get_by_text("Picture take 2 (in use)")).to_be_visible()
    gallery.get_by_role("button", name="Use picture take 1").click()
    planned = _will_make(page)
    assert [n for n in planned if n["kind"] not in ("segment", "compose")] == []
    assert page.get_by_role("region", name="Before it runs").get_by_text(
        "estimated $0.0000").is_visible()
    assert _generated(_manifest(web, web.keys[0], _run_it(page))) == []
    expect(page.get_by_role("region", name="Scene 1").get_by_text(
        "Picture take 1 (in use)")).to_be_visible()


def test_another_key_sees_none_of_it_and_a_forged_post_changes_nothing(web, browser, finished):
    other = _signed_in(browser, web, web.keys[1])
    expect(other.get_by_text("No videos yet")).to_be_visible()
    answer = other.goto(f"{web.url}/videos/{finished}")
    assert answer.status == 404
    expect(other.get_by_role("heading", name="Not found")).to_be_visible()
    expect(other.get_by_text(f"There is no video {finished} for this key.")).to_be_visible()

    with httpx.Client(base_url=web.url, timeout=30, follow_redirects=False) as client:
        signed = client.post("/sign-in", data={"key": web.keys[0]})
        assert signed.status_code == 303
        cookie = signed.headers["set-cookie"].lower()
        assert "httponly" in cookie and "samesite=strict" in cookie
        runs, others = _runs_of(web.keys[0]), _runs_of(web.keys[1])
        forged = client.post(f"/videos/{finished}/changes",
                             data={"op": "delete", "scene": "s001", "confirm": "yes"})
        assert forged.status_code == 403
        wrong = client.post(f"/videos/{finished}/changes",
                            data={"op": "delete", "scene": "s001", "confirm": "yes",
                                  "csrf": "0" * 64})
        assert wrong.status_code == 403
        assert _runs_of(web.keys[0]) == runs
        page = client.get(f"/videos/{finished}")
        token = re.search(r'name="csrf" value="([0-9a-f]{64})"', page.text)[1]
        # The first key's token on the second key's session is no token at all.
        client.cookies.clear()
        client.post("/sign-in", data={"key": web.keys[1]})
        stolen = client.post(f"/videos/{finished}/changes",
                             data={"op": "delete", "scene": "s001", "confirm": "yes",
                                   "csrf": token})
        assert stolen.status_code == 403
        # The second key's own token, on the first key's video: there is no such video.
        own = re.search(r'name="csrf" value="([0-9a-f]{64})"', client.get("/new").text)[1]
        for route in ("changes", "approve"):
            answer = client.post(f"/videos/{finished}/{route}", data={
                "op": "delete", "scene": "s001", "confirm": "yes", "shot": "s001-image",
                "csrf": own})
            assert answer.status_code == 404, route
        for route in ("progress", "scenes/s001/strip.jpg", f"media/{'0' * 64}"):
            assert client.get(f"/videos/{finished}/{route}").status_code == 404, route
        # Without a token, no form of the page does anything; nor from another site's page.
        for route in ("/new", "/sign-out", f"/videos/{finished}/approve"):
            assert client.post(route, data={"prompt": "x"}).status_code == 403, route
        assert client.post("/new", data={"prompt": "Tides", "csrf": own},
                           headers={"Origin": "https://elsewhere.example"}).status_code == 403
        assert (_runs_of(web.keys[0]), _runs_of(web.keys[1])) == (runs, others)
    with httpx.Client(base_url=web.url, timeout=30, follow_redirects=False) as client:
        # Another site cannot sign a person in with a key of its own.
        answer = client.post("/sign-in", data={"key": web.keys[1]},
                             headers={"Sec-Fetch-Site": "cross-site"})
        assert answer.status_code == 403 and "set-cookie" not in answer.headers


def test_what_the_api_refuses_shows_beside_its_field_and_keeps_what_was_typed(
        web, browser, tmp_path):
    page = _signed_in(browser, web, web.keys[1], size="phone")
    page.goto(web.url + "/new")
    page.get_by_label("Topic").fill("Tides and the moon")
    page.get_by_label("Scenes").evaluate("input => { input.min = ''; input.max = ''; }")
    page.get_by_label("Scenes").fill("0")
    runs = _runs_of(web.keys[1])
    page.get_by_role("button", name="Make video").click()
    expect(page.get_by_text(re.compile(r"^Scenes: .*greater than or equal to 1"))).to_be_visible()
    expect(page.get_by_label("Scenes")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_label("Topic")).to_have_value("Tides and the moon")
    assert _runs_of(web.keys[1]) == runs
    _screenshot(page, "new-video-refused")

    # A music video's track, uploaded: one without a sound is refused beside its field.
    silent = tmp_path / "silence.wav"
    run_ffmpeg(["-f", "lavfi", "-i", "anullsrc=r=44100:cl=mono", "-t", "20", str(silent)],
               what="make a silent track")
    page.get_by_label("Scenes").fill("3")
    page.get_by_text("Mode and director's look").click()
    page.get_by_label("Mode").select_option("music-video")
    page.get_by_label("Track (mp3, wav, m4a or flac)").set_input_files(silent)
    page.get_by_role("button", name="Make video").click()
    expect(page.get_by_text(re.compile(r"^Track: .* is silent"))).to_be_visible()
    expect(page.get_by_label("Mode")).to_have_value("music-video")
    assert _runs_of(web.keys[1]) == runs

    # A script file that is not text, and a topic with a script: each said where it belongs.
    page.goto(web.url + "/new")
    page.get_by_text("Or your own script").click()
    page.get_by_label("Script file (plain text)").set_input_files(
        files=[{"name": "script.txt", "mimeType": "text/plain", "buffer": b"\xff\xfe\x00bad"}])
    page.get_by_role("button", name="Make video").click()
    expect(page.get_by_text("Script: the file is not UTF-8 text")).to_be_visible()
    page.get_by_label("Topic").fill("Tides")
    page.get_by_label("Script: one scene per paragraph").fill("The moon pulls.\n\nThe sea rises.")
    page.get_by_role("button", name="Make video").click()
    expect(page.get_by_role("alert")).to_contain_text("give a prompt, a script or a storyboard")
    expect(page.get_by_label("Script: one scene per paragraph")).to_have_value(
        "The moon pulls.\n\nThe sea rises.")
    assert _runs_of(web.keys[1]) == runs


def test_what_a_person_types_is_shown_as_text_never_run_as_markup(web, browser):
    hostile = '<img src=x onerror="document.title=\'owned\'"><script>document.title=1</script>'
    with web.client(web.keys[1]) as client:
        made = client.post("/jobs", json={"prompt": f"Tides {hostile}", "scenes": 1,
                                          "music": False})
        assert made.status_code == 202, made.text
        job_id = made.json()["id"]
        client.post(f"/jobs/{job_id}/cancel")  # its page is what this test is about
    page = _signed_in(browser, web, web.keys[1])
    expect(page.get_by_role("link", name=f"Tides {hostile}")).to_be_visible()
    page.goto(f"{web.url}/videos/{job_id}")
    expect(page.get_by_role("heading", name=f"Tides {hostile}")).to_be_visible()
    assert page.locator("main img[src=x], main script").count() == 0
    assert page.title() != "owned"


def _cancel(page: Page) -> None:
    page.get_by_role("region", name="Before it runs").get_by_role("link", name="Cancel").click()
    expect(page.get_by_role("region", name="Before it runs")).to_have_count(0)


def _order(page: Page) -> list[str]:
    return page.locator(".card[data-scene]").evaluate_all(
        "cards => cards.map(card => card.dataset.scene)")


def test_a_dialogue_card_edits_each_line_and_scenes_move_go_come_and_revert(web, browser):
    with web.client(web.keys[0]) as client:
        made = client.post("/jobs", json={"prompt": "Mira and Otto argue about the tides",
                                          "scenes": 2, "music": False,
                                          "cast": ["mira", "otto"]})
        assert made.status_code == 202, made.text
        job_id = made.json()["id"]
        assert _wait(client, job_id, {"finished", "failed"})["status"] == "finished"
    page = _signed_in(browser, web, web.keys[0])
    page.goto(f"{web.url}/videos/{job_id}")
    first, second = _order(page)

    # A dialogue's card has a field per line, named by who says it: one line rewritten
    # regenerates that line's voice (and the scene's lip-sync), nothing else of the scene.
    scene = page.get_by_role("region", name="Scene 1")
    lines = scene.get_by_label(re.compile(r"^Line \d \((Mira|Otto)\)$"))
    assert lines.count() >= 2
    lines.nth(1).fill("The moon pulls the sea, Mira. Twice a day.")
    scene.get_by_role("button", name="Save scene").click()
    planned = [(n["kind"], n["scene"]) for n in _will_make(page)
               if n["kind"] not in ("segment", "compose")]
    assert sorted(planned) == [("lipsync", first), ("tts", first)]
    _cancel(page)

    # Moved with the keyboard's buttons: only the joins are made again.
    page.get_by_role("region", name="Scene 1").get_by_role("button", name="Move up").click()
    expect(page.get_by_role("region", name="Scene 1")).to_contain_text(
        "it is already the first scene")
    page.get_by_role("region", name="Scene 1").get_by_role("button", name="Move down").click()
    assert {n["kind"] for n in _will_make(page)} == {"segment", "compose"}
    _run_it(page)
    assert _order(page) == [second, first]
    page.get_by_role("region", name="Scene 2").get_by_role("button", name="Move up").click()
    expect(page.get_by_role("region", name="Before it runs")).to_contain_text(
        f"move {first} first")
    _cancel(page)

    # Dragged, deleted, added: each says first what it would make.
    page.get_by_role("region", name="Scene 1").drag_to(
        page.get_by_role("region", name="Scene 2"))
    expect(page.get_by_role("region", name="Before it runs")).to_contain_text(
        f"move {second} after {first}")  # dragged down: after the card it was dropped on
    _cancel(page)
    page.get_by_role("region", name="Scene 2").get_by_role("button", name="Delete scene").click()
    expect(page.get_by_role("region", name="Before it runs")).to_contain_text(
        f"delete {first}")
    _cancel(page)
    scene = page.get_by_role("region", name="Scene 2")
    scene.get_by_text("Add a scene after this one").click()
    scene.get_by_label("New scene's narration").fill("And then the tide turned.")
    scene.get_by_role("button", name="Add scene").click()
    added = {n["kind"] for n in _will_make(page) if n["scene"] not in (first, second, None)}
    assert {"tts", "image", "clip"} <= added
    _cancel(page)

    # Back to the first version: everything it needs is stored.
    history = page.get_by_role("region", name="History")
    history.get_by_role("button", name="Revert to version 1").click()
    assert {n["kind"] for n in _will_make(page)} <= {"segment", "compose"}
    expect(page.get_by_role("region", name="Before it runs")).to_contain_text(
        "estimated $0.0000")
    assert _generated(_manifest(web, web.keys[0], _run_it(page))) == []
    assert _order(page) == [first, second]


def test_a_flagged_shot_is_approved_on_its_page_and_a_rejected_one_shows_its_retake(
        web, browser, register_provider, monkeypatch, tmp_path):
    """A render whose keyframe never passes its gate (one colour), made in this process for
    the first key, as if through the API: the page lists it to review."""
    from prefect import tags
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterTags
    from prefect.client.schemas.sorting import FlowRunSort

    from cache import open_store
    from flows.api.jobs import owner_tag
    from flows.api.keys import digest
    from flows.video import render_storyboard
    from tasks.providers.local_planner import LocalPlanner
    from tasks.review import approved
    from tasks.storyboard import VideoRequest
    from tests.test_gates import Flat
    from tests.test_pipeline import use_prices

    register_provider(Flat)
    monkeypatch.setenv("REELFLOW_IMAGE", "flat")
    monkeypatch.setenv("REELFLOW_STORE", str(web.out.parent / "store"))
    monkeypatch.setenv("REELFLOW_OUT", str(web.out))
    use_prices(monkeypatch, tmp_path, lambda prices: prices.update(
        flat={"procedural": {"per_image": 0.0}}))
    board = LocalPlanner().plan(VideoRequest(topic="tide pools", scenes=1)).storyboard
    owner = owner_tag(digest(web.keys[0]))
    with tags(owner):
        summary = render_storyboard(board)
    assert "s001-image" in [row["id"] for row in summary.review]
    with get_client(sync_client=True) as client:
        job_id = str(client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=FlowRunFilterTags(all_=[owner])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=1)[0].id)

    page = _signed_in(browser, web, web.keys[0])
    page.goto(f"{web.url}/videos/{job_id}")
    review = page.get_by_role("region", name="Shots to review")
    expect(review).to_contain_text("the picture is a single colour")
    review.get_by_role("button", name="Reject s001-image").click()
    planned = [(n["kind"], n["scene"]) for n in _will_make(page)]
    assert ("image", "s001") in planned
    _cancel(page)
    page.get_by_role("region", name="Shots to review").get_by_role(
        "button", name="Approve s001-image").click()
    expect(page.get_by_role("button", name="Approve s001-image")).to_have_count(0)
    for row in [row for row in summary.review if row["id"] != "s001-image"]:  # still waiting
        expect(page.get_by_role("button", name=f"Approve {row['id']}")).to_be_visible()
    shot = next(node for node in json.loads(summary.manifest.read_text())["nodes"]
                if node["id"] == "s001-image")
    assert approved(open_store(str(web.out.parent / "store")), shot["outputs"]["image"])
