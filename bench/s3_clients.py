"""Compare Python S3 clients (boto3, obstore, s3fs) against a local moto server.

Run by hand (not by the tests):  python bench/s3_clients.py
Needs moto[server]; each client is measured only if it is installed.

Measures, per client:
  * import time of the client module (fresh subprocess, median of 3)
  * 200 HEAD requests of a small object
  * 50 PUTs of 64 KiB objects, 5 PUTs of a 20 MiB object read from a file
  * 5 GETs of the 20 MiB object to a local file
and checks features: create-if-absent (If-None-Match: *), replace-if-match
(If-Match: <etag>), user metadata, SHA-256 checksum, presigned GET, path-style
addressing with a custom endpoint.

moto runs in this process (ThreadedMotoServer), so the timings include moto's
own Python overhead; compare clients with each other, not with real S3.
"""

import base64
import hashlib
import importlib.util
import logging
import os
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import timedelta
from pathlib import Path

BUCKET = "bench"
N_HEAD, N_SMALL, N_BIG, N_GET = 200, 50, 5, 5
SMALL, BIG = 64 * 1024, 20 * 1024 * 1024
IMPORTS = {"boto3": "import boto3", "obstore": "import obstore, obstore.store", "s3fs": "import s3fs"}


def import_seconds(stmt):
    code = f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"
    runs = [float(subprocess.run([sys.executable, "-c", code], check=True, capture_output=True,
                                 text=True).stdout) for _ in range(3)]
    return statistics.median(runs)


class Boto3:
    how = {"create": "put_object(IfNoneMatch='*')", "match": "put_object(IfMatch=etag)",
           "meta": "put_object(Metadata=) / head_object()['Metadata']",
           "sha256": "put_object(ChecksumAlgorithm='SHA256') / head_object(ChecksumMode='ENABLED')",
           "presign": "generate_presigned_url('get_object')",
           "path": "Config(s3={'addressing_style': 'path'})"}

    def __init__(self, endpoint):
        import boto3
        import botocore.config
        cfg = botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"})
        self.c = boto3.session.Session().client("s3", endpoint_url=endpoint, config=cfg)

    def head(self, k): return self.c.head_object(Bucket=BUCKET, Key=k)
    def etag(self, k): return self.head(k)["ETag"]
    def put(self, k, data, **kw): self.c.put_object(Bucket=BUCKET, Key=k, Body=data, **kw)

    def put_file(self, k, path):
        with open(path, "rb") as f:
            self.put(k, f)

    def get_file(self, k, path): self.c.download_file(BUCKET, k, str(path))
    def put_create(self, k, data): self.put(k, data, IfNoneMatch="*")
    def put_if_match(self, k, data, etag): self.put(k, data, IfMatch=etag)
    def put_meta(self, k, data, meta): self.put(k, data, Metadata=meta)
    def read_meta(self, k): return self.head(k)["Metadata"]
    def put_sha256(self, k, data): self.put(k, data, ChecksumAlgorithm="SHA256")
    def read_sha256(self, k):
        return self.c.head_object(Bucket=BUCKET, Key=k, ChecksumMode="ENABLED").get("ChecksumSHA256")
    def presign(self, k):
        return self.c.generate_presigned_url("get_object", Params={"Bucket": BUCKET, "Key": k}, ExpiresIn=300)


class Obstore:
    how = {"create": "put(mode='create')", "match": "put(mode={'e_tag': etag})",
           "meta": "put(attributes={'k': v}) / get().attributes (head() has no metadata)",
           "sha256": "S3Store(checksum_algorithm='sha256'); head() has no checksum field, "
                     "read back via sign('HEAD') + x-amz-checksum-mode. obstore sends x-amz-checksum-sha256 "
                     "but not x-amz-sdk-checksum-algorithm, which moto needs before it stores a checksum",
           "presign": "sign(store, 'GET', key, timedelta)",
           "path": "S3Store(endpoint=..., virtual_hosted_style_request=False)"}

    def __init__(self, endpoint):
        import obstore
        from obstore.store import S3Store
        self.o = obstore
        kw = dict(endpoint=endpoint, region="us-east-1", virtual_hosted_style_request=False,
                  client_options={"allow_http": True})
        self.s = S3Store(BUCKET, **kw)
        self.s_sha = S3Store(BUCKET, checksum_algorithm="sha256", **kw)

    def head(self, k): return self.o.head(self.s, k)
    def etag(self, k): return self.head(k)["e_tag"]
    def put(self, k, data): self.o.put(self.s, k, data)
    def put_file(self, k, path): self.o.put(self.s, k, Path(path))

    def get_file(self, k, path):
        with open(path, "wb") as f:
            for chunk in self.o.get(self.s, k):
                f.write(chunk)

    def put_create(self, k, data): self.o.put(self.s, k, data, mode="create")
    def put_if_match(self, k, data, etag): self.o.put(self.s, k, data, mode={"e_tag": etag})
    def put_meta(self, k, data, meta): self.o.put(self.s, k, data, attributes=meta)
    def read_meta(self, k): return self.o.get(self.s, k).attributes
    def put_sha256(self, k, data): self.o.put(self.s_sha, k, data)

    def read_sha256(self, k):
        req = urllib.request.Request(self.o.sign(self.s, "HEAD", k, timedelta(minutes=5)), method="HEAD",
                                     headers={"x-amz-checksum-mode": "ENABLED"})
        return urllib.request.urlopen(req).headers.get("x-amz-checksum-sha256")

    def presign(self, k): return self.o.sign(self.s, "GET", k, timedelta(minutes=5))


class S3fs:
    how = {"create": "pipe_file(mode='create') -> FileExistsError", "match": "pipe_file(IfMatch=etag) (kwarg passthrough)",
           "meta": "pipe_file(Metadata=) / fs.metadata()",
           "sha256": "pipe_file(ChecksumAlgorithm='SHA256'); info() has no checksum, "
                     "read back via raw call_s3('head_object', ChecksumMode='ENABLED')",
           "presign": "fs.sign() / fs.url()",
           "path": "client_kwargs endpoint_url + config_kwargs s3.addressing_style=path"}

    def __init__(self, endpoint):
        import s3fs
        self.fs = s3fs.S3FileSystem(client_kwargs={"endpoint_url": endpoint}, skip_instance_cache=True,
                                    config_kwargs={"s3": {"addressing_style": "path"}})

    def head(self, k): return self.fs.info(f"{BUCKET}/{k}", refresh=True)
    def etag(self, k): return self.head(k)["ETag"]
    def put(self, k, data, **kw): self.fs.pipe_file(f"{BUCKET}/{k}", data, **kw)
    def put_file(self, k, path): self.fs.put_file(str(path), f"{BUCKET}/{k}")
    def get_file(self, k, path): self.fs.get_file(f"{BUCKET}/{k}", str(path))
    def put_create(self, k, data): self.put(k, data, mode="create")
    def put_if_match(self, k, data, etag): self.put(k, data, IfMatch=etag)
    def put_meta(self, k, data, meta): self.put(k, data, Metadata=meta)
    def read_meta(self, k): return self.fs.metadata(f"{BUCKET}/{k}")
    def put_sha256(self, k, data): self.put(k, data, ChecksumAlgorithm="SHA256")
    def read_sha256(self, k):
        return self.fs.call_s3("head_object", Bucket=BUCKET, Key=k, ChecksumMode="ENABLED").get("ChecksumSHA256")
    def presign(self, k): return self.fs.sign(f"{BUCKET}/{k}", expiration=300)


def timed(fn, n):
    t = time.perf_counter()
    for i in range(n):
        fn(i)
    return time.perf_counter() - t


def err(e):
    return f"{type(e).__name__}: {str(e).splitlines()[0][:110] if str(e) else ''}"


def features(c, name, endpoint):
    out = {}

    def check(feature, fn):
        try:
            ok, note = fn()
        except Exception as e:  # noqa: BLE001 - report whatever the client raised
            ok, note = False, err(e)
        out[feature] = ("yes" if ok else "NO") + f" - {c.how[feature]}" + (f" [{note}]" if note else "")

    def create():
        k = f"{name}/create"
        c.put_create(k, b"first")
        try:
            c.put_create(k, b"second")
        except Exception as e:  # noqa: BLE001
            return True, f"2nd refused: {err(e)}"
        return False, "2nd create-PUT succeeded"

    def match():
        k = f"{name}/match"
        c.put(k, b"v1")
        old = c.etag(k)
        c.put_if_match(k, b"v2", old)
        try:
            c.put_if_match(k, b"v3", old)
        except Exception as e:  # noqa: BLE001
            return True, f"stale etag refused: {err(e)}"
        return False, "PUT with stale etag succeeded"

    def meta():
        c.put_meta(f"{name}/meta", b"m", {"purpose": "bench"})
        got = c.read_meta(f"{name}/meta")
        return got.get("purpose") == "bench", f"got {dict(got)}"

    def sha256():
        data = b"checksum me" * 100
        c.put_sha256(f"{name}/sha", data)
        want = base64.b64encode(hashlib.sha256(data).digest()).decode()
        got = c.read_sha256(f"{name}/sha")
        return got == want, None if got == want else f"got {got!r}, want {want!r}"

    def presign():
        c.put(f"{name}/signed", b"signed body")
        return urllib.request.urlopen(c.presign(f"{name}/signed")).read() == b"signed body", None

    def path():
        url = c.presign(f"{name}/signed")
        return url.startswith(f"{endpoint}/{BUCKET}/"), url.split("?")[0]

    for feature, fn in [("create", create), ("match", match), ("meta", meta), ("sha256", sha256),
                        ("presign", presign), ("path", path)]:
        check(feature, fn)
    return out


def main():
    for var, val in {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
                     "AWS_SESSION_TOKEN": "test", "AWS_REGION": "us-east-1",
                     "AWS_DEFAULT_REGION": "us-east-1"}.items():
        os.environ[var] = val
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    clients = {"boto3": Boto3, "obstore": Obstore, "s3fs": S3fs}
    installed = {}
    for name, cls in clients.items():
        if importlib.util.find_spec(name) is None:
            print(f"skip {name}: not installed")
        else:
            installed[name] = cls
    if not installed:
        return

    Boto3(endpoint).c.create_bucket(Bucket=BUCKET) if "boto3" in installed else \
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"))

    rows, feats = {}, {}
    with tempfile.TemporaryDirectory() as tmp:
        big = Path(tmp, "big.bin")
        big.write_bytes(os.urandom(BIG))
        small = os.urandom(SMALL)
        for name, cls in installed.items():
            c = cls(endpoint)
            c.put(f"{name}/tiny", b"x" * 100)
            r = rows[name] = {"import (s, median of 3)": import_seconds(IMPORTS[name])}
            r[f"{N_HEAD} HEAD (s)"] = timed(lambda i: c.head(f"{name}/tiny"), N_HEAD)
            r[f"{N_SMALL} PUT 64 KiB (s)"] = timed(lambda i: c.put(f"{name}/small/{i}", small), N_SMALL)
            r[f"{N_BIG} PUT 20 MiB file (s)"] = timed(lambda i: c.put_file(f"{name}/big/{i}", big), N_BIG)
            out = Path(tmp, f"{name}.out")
            r[f"{N_GET} GET 20 MiB to file (s)"] = timed(lambda i: c.get_file(f"{name}/big/0", out), N_GET)
            assert out.stat().st_size == BIG, f"{name}: downloaded {out.stat().st_size} bytes"
            feats[name] = features(c, name, endpoint)
    server.stop()

    names = list(rows)
    print(f"\n{'metric':<26}" + "".join(f"{n:>10}" for n in names))
    for metric in rows[names[0]]:
        print(f"{metric:<26}" + "".join(f"{rows[n][metric]:>10.3f}" for n in names))
    for name in names:
        print(f"\n{name} features:")
        for feature, line in feats[name].items():
            print(f"  {feature:<8} {line}")


if __name__ == "__main__":
    main()
