"""Benchmark: 200 job submissions from 20 concurrent clients against `reelflow api`, started as
a user starts it (its own Prefect server, its runner taking 4 runs at once). The jobs are tiny
(1 scene, short side 64, no music) and 9 in 10 are the same prompt, so most are reused.

Measures how long POST /jobs takes to answer (acceptance), then GET /jobs/{id} while the jobs
run, and checks that no job is lost or made twice and that every one finishes.

    .venv/bin/python bench/api_load.py [--clients 20] [--jobs 200]
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from flows.api.keys import digest, new_key  # noqa: E402

SAME = "Why the sky is blue"
OVER = {"finished", "failed", "canceled"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cpu_seconds(pid: int) -> dict[str, float]:
    """CPU time so far of the API's process and of the Prefect server it started (and of the
    flow runs, which the runner starts as its children)."""
    api = psutil.Process(pid)
    spent = {"api": 0.0, "prefect_server": 0.0, "flow_runs": 0.0}
    for process in [api, *api.children(recursive=True)]:
        times = process.cpu_times()
        command = " ".join(process.cmdline())
        if process.pid == pid:  # the flow runs that ended are its reaped children
            spent["api"] += times.user + times.system
            spent["flow_runs"] += times.children_user + times.children_system
            continue
        part = ("prefect_server" if "server start" in command or "uvicorn" in command
                else "flow_runs")
        spent[part] += times.user + times.system + times.children_user + times.children_system
    return {part: round(value, 1) for part, value in spent.items()}


def percentiles(samples: list[float]) -> dict[str, float]:
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return {"n": len(samples), "p50_ms": round(1000 * cuts[49], 1),
            "p90_ms": round(1000 * cuts[89], 1), "p99_ms": round(1000 * cuts[98], 1),
            "max_ms": round(1000 * max(samples), 1)}


async def submit(client: httpx.AsyncClient, key: str, prompts: list[str],
                 accepted: list[float]) -> list[str]:
    made = []
    for prompt in prompts:
        started = time.perf_counter()
        answer = await client.post("/jobs", headers={"Authorization": f"Bearer {key}"},
                                   json={"prompt": prompt, "scenes": 1, "short_side": 64,
                                         "music": False})
        accepted.append(time.perf_counter() - started)
        answer.raise_for_status()
        made.append(answer.json()["id"])
    return made


async def follow(client: httpx.AsyncClient, key: str, ids: list[str], read: list[float],
                 run: bool) -> dict[str, str]:
    """Poll the client's jobs in turn, one request a second, until each is over (without
    runs: each 5 times), as a client would."""
    status = {job: "queued" for job in ids}
    rounds = itertools.count() if run else range(5)
    for _ in rounds:
        waiting = [job for job, value in status.items() if value not in OVER]
        if not waiting:
            break
        for job in waiting:
            started = time.perf_counter()
            answer = await client.get(f"/jobs/{job}", headers={"Authorization": f"Bearer {key}"})
            read.append(time.perf_counter() - started)
            answer.raise_for_status()
            status[job] = answer.json()["status"]
            await asyncio.sleep(1)
    return status


async def load(url: str, keys: list[str], jobs: int, run: bool) -> dict:
    per_client = jobs // len(keys)
    accepted: list[float] = []
    read: list[float] = []
    async with httpx.AsyncClient(base_url=url, timeout=600,
                                 limits=httpx.Limits(max_connections=len(keys))) as client:
        started = time.perf_counter()
        made = await asyncio.gather(*[
            submit(client, key, [SAME if (n * per_client + i) % 10 else f"{SAME}, take {n}-{i}"
                                 for i in range(per_client)], accepted)
            for n, key in enumerate(keys)])
        submitted_s = time.perf_counter() - started
        finished = await asyncio.gather(*[follow(client, key, ids, read, run)
                                          for key, ids in zip(keys, made)])
        all_done_s = time.perf_counter() - started
        listed = set()
        for key in keys:  # every job is listed once for its key
            answer = await client.get("/jobs", params={"limit": 200},
                                      headers={"Authorization": f"Bearer {key}"})
            listed.update(job["id"] for job in answer.json())
    ids = [job for batch in made for job in batch]
    states = [state for batch in finished for state in batch.values()]
    return {"jobs": len(ids), "distinct_ids": len(set(ids)), "listed": len(listed),
            "finished": states.count("finished"), "other": len(states) - states.count("finished"),
            "submit_all_s": round(submitted_s, 1), "all_finished_s": round(all_done_s, 1),
            "accept": percentiles(accepted), "read_while_running": percentiles(read)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--no-workers", action="store_true",
                        help="Only accept and read jobs: nothing runs them")
    parser.add_argument("--prefect-database", help="The started Prefect server's database "
                        "(postgresql+asyncpg://...) [default: its own SQLite file]")
    args = parser.parse_args()
    keys = [new_key()[0] for _ in range(args.clients)]
    folder = Path(tempfile.mkdtemp(prefix="reelflow-api-load-"))
    print(f"the API's log: {folder / 'api.log'}", file=sys.stderr)
    (folder / "keys").write_text("".join(digest(key) + "\n" for key in keys))
    port, prefect_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update({"REELFLOW_STORE": str(folder / "store"), "REELFLOW_OUT": str(folder / "out"),
                "REELFLOW_API_KEYS_FILE": str(folder / "keys"),
                # Measured here: the API's speed, not its limits.
                "REELFLOW_API_REQUESTS_PER_MINUTE": "1000000",
                "REELFLOW_API_JOBS_AT_ONCE": "1000",
                "PREFECT_HOME": str(folder / "prefect")})
    if args.prefect_database:
        env["PREFECT_SERVER_DATABASE_CONNECTION_URL"] = args.prefect_database
    log = open(folder / "api.log", "w")
    api = subprocess.Popen([str(ROOT / ".venv/bin/reelflow"), "api", "--port", str(port),
                            "--prefect-port", str(prefect_port),
                            *(["--no-workers"] if args.no_workers else [])], env=env, stdout=log,
                           stderr=log)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:  # polling a process we started
            try:
                if httpx.get(f"{url}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        result = asyncio.run(load(url, keys, args.jobs, not args.no_workers))
        result["cpu_s"] = cpu_seconds(api.pid)
    finally:
        api.send_signal(signal.SIGTERM)
        api.wait(60)
    result["api_exit"] = api.returncode
    print(json.dumps(result, indent=2))
    shutil.rmtree(folder)


if __name__ == "__main__":
    main()
