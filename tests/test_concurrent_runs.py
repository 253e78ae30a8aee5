"""Four renders at once on one store, sharing half their scenes: every distinct node is
generated exactly once across all four, every video is right, and the store verifies. Every
store: the local folder, and a bucket on GCS (gcp-storage-emulator) and on S3 (moto's server),
in this process on 127.0.0.1, that the four processes share through one machine's local cache
and locks."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections import Counter

import pytest
from google.auth.credentials import AnonymousCredentials
from google.cloud import storage

from cache import open_bucket, open_store
from cache.bucket_store import BucketArtifactStore
from tasks.compose import segments
from tasks.ffmpeg import probe
from tasks.storyboard import Storyboard
from tests.fakes.gcs import storage_emulator
from tests.fakes.s3 import s3_fake, use_s3
from tests.pacing import paced_seconds
from tests.test_cli_input import REELFLOW, run

SHARED = ["Tide pools hide a whole world.", "Anemones wave their arms."]


def storyboard(index: int) -> dict:
    own = [f"Video {index} shows a hermit crab.", f"Video {index} ends at sunset."]
    return {"title": f"Tide pools {index}", "scenes": [
        {"id": f"s{n:03d}", "order": n, "lines": [{"text": text}],
         "visual_prompt": f"tide pool: {text}", "on_screen_text": text[:60], "duration": 2.5}
        for n, text in enumerate([*SHARED, *own])]}


# On S3 in `make soak`: tests/test_s3.py renders on S3 with another machine reusing every node.
@pytest.fixture(params=["local", "gcs", pytest.param("s3", marks=pytest.mark.slow)])
def env(request, cli_env, prefect_api_url, tmp_path, monkeypatch):
    env = {**cli_env, "PREFECT_API_URL": prefect_api_url}
    if request.param == "local":
        yield env
        return
    (tmp_path / "tmp").mkdir()  # a fresh local cache of the bucket, shared by the four
    if request.param == "s3":
        with s3_fake() as fake:
            yield {**env, **use_s3(monkeypatch, fake), "TMPDIR": str(tmp_path / "tmp"),
                   "REELFLOW_STORE": f"s3://{fake.new_bucket()}/cache"}
        return
    with storage_emulator() as url:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", url)
        client = storage.Client(project="test", credentials=AnonymousCredentials())
        bucket = client.create_bucket(f"reelflow-store-{uuid.uuid4().hex[:12]}")
        yield {**env, "STORAGE_EMULATOR_HOST": url, "REELFLOW_STORE": f"gs://{bucket.name}/cache",
               "TMPDIR": str(tmp_path / "tmp")}


def test_four_renders_sharing_scenes_generate_each_node_once(env, workspace, tmp_path):
    files = []
    for index in range(4):
        path = tmp_path / f"board{index}.json"
        path.write_text(json.dumps(storyboard(index)))
        files.append(path)
    renders = [subprocess.Popen([REELFLOW, "render", str(path), "--json"], env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
               for path in files]
    results = [render.communicate(timeout=600) for render in renders]
    assert [render.returncode for render in renders] == [0, 0, 0, 0], [r[1] for r in results]

    location = env["REELFLOW_STORE"]  # a bucket is read through this test's own local copy
    store = (BucketArtifactStore(open_bucket(location), cache_dir=tmp_path / "reader")
             if "://" in location else open_store(location))
    generated, used = Counter(), set()
    for stdout, _ in results:
        summary = json.loads(stdout)
        manifest = json.loads(open(summary["manifest"]).read())
        for node in manifest["nodes"]:
            if node["key"]:
                used.add(node["key"])
                generated[node["key"]] += node["status"] == "generated"
        info = probe(summary["video"])
        assert info.duration == pytest.approx(paced_seconds(manifest, store), abs=0.1)
        assert info.has_audio
    assert set(generated) == used
    assert all(count == 1 for count in generated.values()), generated.most_common(3)
    # 2 shared scenes × 3 nodes + 4 videos × (2 own scenes × 3 nodes + a segment + compose):
    # s000-s003 make one segment, so every video's holds scenes of its own.
    assert [len(group) for group in segments(Storyboard.model_validate(storyboard(0)))] == [4]
    assert len(used) == 2 * 3 + 4 * (2 * 3 + 1 + 1)
    assert run(["cache", "verify"], env).returncode == 0
