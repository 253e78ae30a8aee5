"""Cloud soak: `reelflow make --profile cloud` renders against the project's fake Gemini, Veo,
ElevenLabs and Replicate services (the real SDKs, over HTTPS), with seeded faults on every route
and kill -9 at random points, each render run again until it succeeds. Then it counts what
issue 11 asks: published clips truncated (0), nodes submitted more than once after a kill (0),
and the ledger minus what the fakes billed (0.00 USD).

    make bench      # or: .venv/bin/python bench/cloud_soak.py [--renders 20] [--seed 11]
                    #  [--scenes 2] [--transient 0.2] [--garbage 0.1] [--kill-share 0.5]

Faults, drawn per request from one seeded generator (request order follows thread timing, so
a seed fixes the rates and kill points, not every draw):
- transient (`--transient`, 20%), on every route: 429 with Retry-After 0, 500, 503 or a reset
  connection, answered before any work is done (nothing billed, no job created);
- garbage (`--garbage`, 10%): Gemini's model text cut mid-JSON and pictures cut in half (billed:
  the work was done); Google replies that are not JSON at all (before any work); ElevenLabs
  replies that are not JSON or carry a third of the audio (billed); Replicate replies that are
  not JSON (creates: before any work; polls: after it); and, per job, Veo operations that end
  truncated, half as long as asked or not a video, and Replicate predictions whose output file
  is cut in half (all billed).
About half the renders are killed with SIGKILL (the whole process group) once the fakes have
seen a random number of requests in that run, after a random delay; some reruns are killed
again. Renders run one at a time, each with its own store and output folder, on one Prefect
server. The figures go to stdout and bench/results/cloud-soak-<seed>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from config.prefect_defaults import apply_prefect_defaults  # noqa: E402

apply_prefect_defaults()

from cache import open_store  # noqa: E402
from config.pricing import price_table  # noqa: E402
from tasks import checks  # noqa: E402
from tasks.ffmpeg import ffmpeg_exe  # noqa: E402
from tasks.providers.base import BrokenOutput  # noqa: E402
from tests.fakes.elevenlabs import TTS_PATH, FakeElevenLabs  # noqa: E402
from tests.fakes.gcs import service_account_key  # noqa: E402
from tests.fakes.google import FETCH, GENERATE, PREDICT, FakeGoogle  # noqa: E402
from tests.fakes.replicate import CREATE_PATH, GET_PATH, FakeReplicate  # noqa: E402
from tests.fakes.server import RESET, Request, Response, TlsCert  # noqa: E402

REELFLOW = [sys.executable, "-m", "flows.cli"]
KEYS = {"GEMINI_API_KEY": "soak-gemini", "ELEVENLABS_API_KEY": "soak-eleven",
        "REPLICATE_API_TOKEN": "soak-replicate"}
MAX_RUNS = 6  # runs of one render before it counts as not finished
KILL_AFTER_REQUESTS = (1, 18)  # a killed run dies after this many requests reach the fakes...
KILL_DELAY_S = (0.0, 2.0)  # ...and then this long (uniform), unless it finished first
BROKEN_VEO = ("truncated", "short", "garbage")
NOT_JSON = b"<html><body>502 Bad Gateway</body></html>"  # what a proxy answers


def transient_fault(rng: random.Random) -> Response | str:
    return rng.choice([
        Response.json({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED",
                                 "message": "slow down"}}, 429, {"Retry-After": "0"}),
        Response.json({"error": {"code": 500, "status": "INTERNAL", "message": "oops"}}, 500),
        Response.json({"error": {"code": 503, "status": "UNAVAILABLE", "message": "busy"}}, 503),
        RESET])


def not_json() -> Response:
    return Response(200, NOT_JSON, {"Content-Type": "application/json"})


def edited(response: Response, change: Callable[[dict], None]) -> Response:
    """`response` with its JSON body changed by `change`."""
    body = json.loads(response.body)
    change(body)
    return Response(response.status, json.dumps(body).encode(), response.headers)


# Garbage, by route: (request, answer, rng) → the reply sent instead. Calling `answer` first
# means the work was done (and billed) and the reply broke on its way back.

def google_garbage(request: Request, answer, rng: random.Random) -> Response:
    if request.path.endswith(":predictLongRunning") or rng.random() < 0.5:
        return not_json()  # before any work: no job, nothing billed
    response = answer()
    if response.status != 200 or not request.path.endswith(":generateContent"):
        return not_json() if response.status == 200 else response

    def cut(body: dict) -> None:
        for candidate in body.get("candidates", []):
            for part in candidate.get("content", {}).get("parts", []):
                if "text" in part:
                    part["text"] = part["text"][:len(part["text"]) // 2]
                if "inlineData" in part:
                    data = part["inlineData"]["data"]
                    part["inlineData"]["data"] = data[:len(data) // 8 * 4]
    return edited(response, cut)


def eleven_garbage(request: Request, answer, rng: random.Random) -> Response:
    response = answer()
    if response.status != 200:
        return response
    if rng.random() < 0.5:
        return not_json()

    def cut(body: dict) -> None:
        audio = body["audio_base64"]
        body["audio_base64"] = audio[:len(audio) // 24 * 8]  # a third: whole 16-bit samples
    return edited(response, cut)


def replicate_garbage(request: Request, answer, rng: random.Random) -> Response:
    if request.method == "POST":
        return not_json()  # a create: before any work, no prediction
    response = answer()
    return not_json() if response.status == 200 else response


class Chaos:
    """Decides every request's fate from one seeded generator, counts what it injected, and
    signals once a run has sent a given number of requests (the kill point)."""

    def __init__(self, rng: random.Random, transient: float, garbage: float):
        self.rng, self.transient, self.garbage = rng, transient, garbage
        self.injected: Counter[str] = Counter()
        self.requests = 0
        self._lock = threading.Lock()
        self._kill_at: int | None = None
        self._reached = threading.Event()

    def arm(self, requests: int | None) -> threading.Event:
        """An event set once `requests` more requests arrive (None: never)."""
        with self._lock:
            self._reached = threading.Event()
            self._kill_at = None if requests is None else self.requests + requests
            return self._reached

    def decider(self, service: str, garbage: dict[str, Callable]):
        """The chaos hook of one fake: `garbage` maps a path pattern to its garbage maker."""

        def decide(request: Request, answer: Callable[[], Response]) -> Response | str:
            with self._lock:
                self.requests += 1
                if self._kill_at is not None and self.requests >= self._kill_at:
                    self._reached.set()
                draw = self.rng.random()
                maker = next((make for pattern, make in garbage.items()
                              if re.search(pattern, request.path)), None)
                if draw < self.transient:
                    self.injected[f"{service} transient"] += 1
                    return transient_fault(self.rng)
                if maker is not None and draw < self.transient + self.garbage:
                    self.injected[f"{service} garbage"] += 1
                    own = random.Random(self.rng.random())  # its draws, whatever others do
                    garble = lambda: maker(request, answer, own)  # noqa: E731
                else:
                    garble = None
            # Outside the lock: answering may take a while.
            return garble() if garble else answer()

        return decide


class Services:
    """The fakes of the cloud profile, with chaos on every route and broken jobs drawn ahead."""

    def __init__(self, tls: TlsCert, folder: Path, chaos: Chaos, rng: random.Random,
                 garbage: float):
        self.google = FakeGoogle(tls, polls=2)
        self.eleven = FakeElevenLabs(tls)
        self.replicate = FakeReplicate(tls, polls=2)
        self.google.server.route("POST", r"^/token$", lambda request: Response.json(
            {"access_token": "soak-vertex-token", "expires_in": 3600, "token_type": "Bearer"}))
        service_account_key(folder / "adc.json", token_uri=f"{self.google.url}/token")
        self.adc = folder / "adc.json"
        google_paths = {pattern: google_garbage for pattern in (GENERATE, PREDICT, FETCH)}
        self.google.server.chaos(chaos.decider("google", google_paths))
        self.eleven.server.chaos(chaos.decider("elevenlabs", {TTS_PATH: eleven_garbage}))
        self.replicate.server.chaos(chaos.decider("replicate", {
            CREATE_PATH: replicate_garbage, GET_PATH: replicate_garbage}))
        # Jobs that end broken, drawn ahead: more than any soak submits.
        self.google.outcomes = [rng.choice(BROKEN_VEO) if rng.random() < garbage else "video"
                                for _ in range(5000)]
        self.replicate.outcomes = ["truncated" if rng.random() < garbage else "succeeded"
                                   for _ in range(5000)]

    def __enter__(self) -> Services:
        for fake in (self.google, self.eleven, self.replicate):
            fake.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for fake in (self.google, self.eleven, self.replicate):
            fake.__exit__(*exc)

    def mark(self) -> dict:
        """Where each fake's books stand now: a render's share is the difference."""
        return {"tokens": self.google.tokens, "images": self.google.billed["image"],
                "video_seconds": self.google.billed["video_seconds"],
                "characters": self.eleven.characters,
                "operations": len(self.google.operations),
                "predictions": len(self.replicate.predictions)}

    def provider_options(self) -> dict:
        fast = {"poll_interval_s": 0.05, "deadline_s": 60}
        return {"gemini": {"base_url": self.google.url},
                "gemini-image": {"base_url": self.google.url},
                "veo": {"base_url": self.google.url, **fast},
                "elevenlabs": {"base_url": self.eleven.url},
                "replicate": {"base_url": self.replicate.url, **fast}}


# One render, run until it succeeds ---------------------------------------------------------


def render(index: int, args, rng: random.Random, services: Services, chaos: Chaos,
           base_env: dict, folder: Path) -> dict:
    """Run `reelflow make` for one topic until it succeeds, killing the planned runs."""
    store, out = folder / "store", folder / "out"
    env = {**base_env, "REELFLOW_STORE": str(store), "REELFLOW_OUT": str(out)}
    topic = f"soak {args.seed} render {index}"
    kills = 0 if rng.random() >= args.kill_share else (2 if rng.random() < 0.3 else 1)
    runs, started = [], services.mark()
    for number in range(1, MAX_RUNS + 1):
        kill_after = (rng.randint(*KILL_AFTER_REQUESTS), rng.uniform(*KILL_DELAY_S)) \
            if number <= kills else None
        runs.append(run_once(topic, args.scenes, env, folder / f"run{number}", services, chaos,
                             kill_after))
        if runs[-1]["exit"] == 0:
            break
    final = runs[-1]
    result = {"render": index, "topic": topic, "store": str(store), "runs": runs,
              "finished": final["exit"] == 0, "books": [started, services.mark()],
              "killed": sum(run["killed"] for run in runs)}
    if result["finished"]:
        result["manifest"] = json.loads(Path(json.loads(final["stdout"])["manifest"]).read_text())
        result["video"] = json.loads(final["stdout"])["video"]
    return result


def run_once(topic: str, scenes: int, env: dict, folder: Path, services: Services,
             chaos: Chaos, kill_after: tuple[int, float] | None) -> dict:
    folder.mkdir(parents=True)
    mark = services.mark()
    reached = chaos.arm(kill_after[0] if kill_after else None)
    started = time.monotonic()
    with open(folder / "stdout", "w") as stdout, open(folder / "stderr", "w") as stderr:
        process = subprocess.Popen(
            [*REELFLOW, "make", topic, "--scenes", str(scenes), "--profile", "cloud", "--json"],
            env=env, cwd=folder, stdout=stdout, stderr=stderr, start_new_session=True)
        killed = False
        if kill_after:
            threading.Thread(target=lambda: (process.wait(), reached.set()),
                             daemon=True).start()
            reached.wait()
            try:
                process.wait(timeout=kill_after[1])  # the fault: a moment on the run's clock
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                killed = True
        process.wait()
        chaos.arm(None)
    err = (folder / "stderr").read_text(errors="replace")
    kept = Path(env["REELFLOW_STORE"]) / "jobs"  # jobs recorded for the next run to resume
    return {"exit": process.returncode, "killed": killed,
            "jobs_kept": len(list(kept.glob("*.json"))) if killed else 0,
            "seconds": round(time.monotonic() - started, 1), "mark": mark,
            "traceback": "Traceback" in err,
            "said": [line for line in err.splitlines() if line.startswith(("error:", "warning:"))],
            "stdout": (folder / "stdout").read_text() if process.returncode == 0 else ""}


# What the renders left ---------------------------------------------------------------------


def broken_published_clips(result: dict) -> list[str]:
    """Clips of the published video whose stored blob fails the render's own clip check, and
    the published video itself if it does not decode to its end."""
    store = open_store(result["store"])
    broken = []
    for node in result["manifest"]["nodes"]:
        if node["kind"] != "clip":
            continue
        record = store.lookup(node["key"])
        try:
            if record is None:
                raise BrokenOutput("not in the store")
            checks.clip(record.parts["params"],
                        {"clip": store.blob_path(record.outputs["clip"].digest)})
        except BrokenOutput as error:
            broken.append(f"render {result['render']} {node['id']} ({node['provider']}): {error}")
    decoded = subprocess.run([ffmpeg_exe(), "-v", "error", "-nostdin", "-i", result["video"],
                              "-f", "null", "-"], capture_output=True, text=True)
    if decoded.returncode or decoded.stderr.strip():
        broken.append(f"render {result['render']} video.mp4: {decoded.stderr.strip()[:200]}")
    return broken


def store_media_problems(result: dict, env: dict) -> list[str]:
    """What `reelflow cache verify --media` finds in the render's store."""
    checked = subprocess.run([*REELFLOW, "cache", "verify", "--media"], capture_output=True,
                             text=True, env={**env, "REELFLOW_STORE": result["store"]})
    return [line for line in checked.stdout.splitlines()[:-1]]


def job_key(body: dict) -> str:
    return json.dumps(body, sort_keys=True)


def render_jobs(result: dict, services: Services) -> list[dict]:
    """The Veo operations and Replicate predictions the render submitted, in order: the run
    that submitted each, how it ended at the fake, and whether it was broken or failed."""
    begin, end = result["books"]
    run_of = run_index(result)
    jobs = []
    operations = list(services.google.operations.items())
    for position in range(begin["operations"], end["operations"]):
        name, operation = operations[position]
        jobs.append({"provider": "veo", "job": name.rsplit("/", 1)[-1],
                     "run": run_of("operations", position), "ended": operation["outcome"],
                     "billed": bool(operation.get("billed")),
                     # Broken as a run saw it: one never fetched to its end was still
                     # running, whatever it would have made.
                     "broken": bool(operation.get("billed"))
                     and operation["outcome"] in BROKEN_VEO,
                     "key": job_key(operation["request"])})
    predictions = list(services.replicate.predictions.values())
    for position in range(begin["predictions"], end["predictions"]):
        prediction = predictions[position]
        status, ending = prediction["status"], services.replicate.endings[prediction["id"]]
        jobs.append({"provider": "replicate", "job": f"{prediction['id']} {prediction['model']}",
                     "run": run_of("predictions", position), "ended": f"{status} ({ending})",
                     "billed": status == "succeeded",
                     "broken": status in ("failed", "canceled")
                     or status == "succeeded" and ending == "truncated",
                     "key": job_key({"model": prediction["model"], "input": prediction["input"]})})
    return jobs


def repaid_submissions(result: dict) -> list[dict]:
    """Jobs submitted with a request equal to an earlier job of the same render that was not
    broken or failed (it was good, or still running when its run ended): paid twice."""
    repaid, earlier = [], {}
    for job in result["jobs"]:
        good = [other for other in earlier.get(job["key"], []) if not other["broken"]]
        if good:
            repaid.append({"render": result["render"], "provider": job["provider"],
                           "job": job["job"], "run": job["run"],
                           "earlier": [(other["job"], other["run"]) for other in good],
                           "after_kill": any(result["runs"][number - 1]["killed"]
                                             for other in good
                                             for number in range(other["run"], job["run"]))})
        earlier.setdefault(job["key"], []).append(job)
    return repaid


def run_index(result: dict) -> Callable[[str, int], int]:
    """(books field, position) → the number of the run that made that job."""
    starts = [run["mark"] for run in result["runs"]]

    def run_of(field: str, position: int) -> int:
        return max(number for number, mark in enumerate(starts, 1) if mark[field] <= position)

    return run_of


def billed_usd(result: dict, services: Services, prices: dict) -> float:
    """What the fakes billed during the render, at the shipped prices."""
    begin, end = result["books"]
    spent = {field: end[field] - begin[field] for field in begin}
    total = (spent["tokens"] / 1000 * prices["gemini"]["gemini-2.5-flash"]["per_1k_tokens"]
             + spent["images"] * prices["gemini-image"]["gemini-2.5-flash-image"]["per_image"]
             + spent["video_seconds"] * prices["veo"]["veo-3.0-fast-generate-001"][
                 "per_video_second"]
             + spent["characters"] / 1000 * prices["elevenlabs"]["eleven_multilingual_v2"][
                 "per_1k_characters"])
    for prediction in list(services.replicate.predictions.values())[
            begin["predictions"]:end["predictions"]]:
        if prediction["status"] != "succeeded":
            continue
        model = prices["replicate"][prediction["model"]]
        if "per_image" in model:
            total += model["per_image"]
        else:
            inputs = prediction["input"]
            total += model["per_video_second"] * inputs["num_frames"] / inputs[
                "frames_per_second"]
    return round(total, 6)


def journaled_usd(result: dict) -> float:
    """What reelflow wrote down: every stored record's cost (accepted replies, whichever run
    made them), plus what the final run's manifest says its own nodes' rejected replies cost.
    A killed or failed run's rejected replies are written down nowhere."""
    store = open_store(result["store"])
    records = {record.key: record.cost_usd for record in store.records()}
    rejected = sum(node["cost_usd"] - records.get(node["key"], 0.0)
                   for node in result["manifest"]["nodes"] if node["status"] == "generated")
    return round(sum(records.values()) + rejected, 6)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--renders", type=int, default=20)
    parser.add_argument("--seed", type=int, default=11)
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--transient", type=float, default=0.20)
    parser.add_argument("--garbage", type=float, default=0.10)
    parser.add_argument("--kill-share", type=float, default=0.5)
    args = parser.parse_args()

    from prefect.settings import PREFECT_API_URL
    from prefect.testing.utilities import prefect_test_harness

    rng = random.Random(args.seed)
    workdir = Path(tempfile.mkdtemp(prefix="reelflow-cloud-soak-"))
    tls = TlsCert(workdir)
    chaos = Chaos(random.Random(rng.random()), args.transient, args.garbage)
    began = time.monotonic()
    with Services(tls, workdir, chaos, random.Random(rng.random()), args.garbage) as services, \
            prefect_test_harness(server_startup_timeout=180):
        env = {name: value for name, value in os.environ.items()
               if not name.startswith(("REELFLOW_", "GOOGLE_")) and name not in KEYS}
        env.update(KEYS, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT),
                                                                  env.get("PYTHONPATH")])),
                   PREFECT_API_URL=PREFECT_API_URL.value(), SSL_CERT_FILE=str(tls.cert_file),
                   REQUESTS_CA_BUNDLE=str(tls.cert_file), NO_PROXY="127.0.0.1,localhost",
                   GOOGLE_APPLICATION_CREDENTIALS=str(services.adc),
                   GOOGLE_CLOUD_PROJECT="soak-project", REELFLOW_SHORT_SIDE="180",
                   REELFLOW_FPS="12",
                   REELFLOW_PROVIDER_OPTIONS=json.dumps(services.provider_options()))
        results = []
        for index in range(1, args.renders + 1):
            results.append(render(index, args, rng, services, chaos, env,
                                  workdir / f"render{index:02d}"))
            last = results[-1]
            print(f"render {index:2d}: {len(last['runs'])} runs, {last['killed']} killed, "
                  f"exits {[run['exit'] for run in last['runs']]}", flush=True)
        report = measure(results, services, env, chaos, args, time.monotonic() - began)
    out = ROOT / "bench" / "results" / f"cloud-soak-{args.seed}.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"report": report, "renders": results}, indent=2, default=str))
    print_report(report)
    print(f"\nfull results: {out}\nwork folder: {workdir}")


def measure(results: list[dict], services: Services, env: dict, chaos: Chaos, args,
            seconds: float) -> dict:
    prices = price_table()
    finished = [r for r in results if r["finished"]]
    truncated = [line for r in finished for line in broken_published_clips(r)]
    media = [f"render {r['render']}: {line}" for r in finished
             for line in store_media_problems(r, env)]
    for r in results:
        r["jobs"] = render_jobs(r, services)
    repaid = [job for r in results for job in repaid_submissions(r)]
    ledgers = []
    for r in finished:
        billed = billed_usd(r, services, prices)
        single = len(r["runs"]) == 1
        ledgers.append({"render": r["render"], "runs": len(r["runs"]), "killed": r["killed"],
                        "billed_usd": billed,
                        "ledger_usd": round(r["manifest"]["cost_usd"], 6) if single else None,
                        "journaled_usd": journaled_usd(r)})
    single = [entry for entry in ledgers if entry["runs"] == 1]
    rerun = [entry for entry in ledgers if entry["runs"] > 1]
    served = Counter(f"{node['kind']}: {node['provider']}" for r in finished
                     for node in r["manifest"]["nodes"]
                     if node["kind"] in ("plan", "tts", "image", "clip"))
    runs = [run for r in results for run in r["runs"]]
    return {
        "seed": args.seed, "renders": len(results), "finished": len(finished),
        "transient_rate": args.transient, "garbage_rate": args.garbage,
        "wall_s": round(seconds), "runs": len(runs),
        "runs_killed": sum(run["killed"] for run in runs),
        "jobs_kept_by_killed_runs": sum(run["jobs_kept"] for run in runs),
        "renders_killed": sum(1 for r in results if r["killed"]),
        "runs_failed_exit_1": sum(run["exit"] == 1 for run in runs),
        "runs_other_exit": sorted({run["exit"] for run in runs} - {0, 1, -9}),
        "runs_with_traceback": sum(run["traceback"] for run in runs),
        "failure_lines": Counter(line for run in runs if run["exit"] == 1
                                 for line in run["said"] if line.startswith("error:")
                                 ).most_common(12),
        "run_seconds_median": statistics.median(run["seconds"] for run in runs),
        "faults_injected": dict(sorted(chaos.injected.items())),
        "requests": chaos.requests,
        "veo_jobs": len(services.google.operations),
        "veo_jobs_broken": sum(op["outcome"] in BROKEN_VEO
                               for op in services.google.operations.values()),
        # Finished at Veo (which bills them) but never fetched to the end by any run.
        "veo_jobs_uncollected": sum(not op.get("billed")
                                    for op in services.google.operations.values()),
        "replicate_predictions": len(services.replicate.predictions),
        "served": dict(sorted(served.items())),
        "published_clips": sum(node["kind"] == "clip" for r in finished
                               for node in r["manifest"]["nodes"]),
        "published_clips_truncated": truncated,
        "stored_media_problems": media,
        "repaid_submissions": repaid,
        "repaid_after_kill": sum(job["after_kill"] for job in repaid),
        "ledger_single_run": single,
        "ledger_rerun": rerun,
        "ledger_minus_billed_single_run_usd": round(
            sum(e["ledger_usd"] - e["billed_usd"] for e in single), 6),
        "journaled_minus_billed_all_usd": round(
            sum(e["journaled_usd"] - e["billed_usd"] for e in ledgers), 6),
        "unjournaled_rerun_usd": round(sum(e["billed_usd"] - e["journaled_usd"]
                                           for e in rerun), 6),
        "billed_usd": round(sum(e["billed_usd"] for e in ledgers), 6),
    }


def print_report(report: dict) -> None:
    rows = [
        ("renders finished", f"{report['finished']} of {report['renders']}"),
        ("runs (killed / failed with exit 1)",
         f"{report['runs']} ({report['runs_killed']} / {report['runs_failed_exit_1']})"),
        ("runs with a traceback on the terminal", report["runs_with_traceback"]),
        ("provider jobs kept by killed runs for the rerun", report["jobs_kept_by_killed_runs"]),
        ("requests to the fakes / faults injected",
         f"{report['requests']} / {sum(report['faults_injected'].values())}"),
        ("published clips checked / truncated",
         f"{report['published_clips']} / {len(report['published_clips_truncated'])}"),
        ("stored media failing `cache verify --media`", len(report["stored_media_problems"])),
        ("jobs submitted again while an earlier one was good or running",
         f"{len(report['repaid_submissions'])} ({report['repaid_after_kill']} after a kill)"),
        ("ledger minus billed, renders of one run (USD)",
         f"{report['ledger_minus_billed_single_run_usd']:+.6f} over "
         f"{len(report['ledger_single_run'])} renders"),
        ("billed but written down nowhere, rerun renders (USD)",
         f"{report['unjournaled_rerun_usd']:.6f} of {report['billed_usd']:.6f} billed in all"),
    ]
    width = max(len(name) for name, _ in rows)
    print()
    for name, value in rows:
        print(f"{name:<{width}}  {value}")
    print(f"served: {report['served']}")
    print(f"faults: {report['faults_injected']}")
    for key in ("published_clips_truncated", "stored_media_problems", "repaid_submissions"):
        for line in report[key]:
            print(f"{key}: {line}")
    for line, count in report["failure_lines"]:
        print(f"exit 1 ({count}x): {line[:160]}")


if __name__ == "__main__":
    main()
