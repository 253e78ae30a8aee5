"""Compare Python S3 clients (boto3, obstore, s3fs) against a local moto server.

Run by hand (not by the tests): python bench/s3_clients.py
Needs moto's server (`make install` has it); each client is measured only if it is installed.

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
IMPORTS = {
    "boto3": "import boto3",
    "obstore": "import obstore, obstore.store",
    "s3fs": "import s3fs",
}


def import_seconds(statement):
    code = (
        "import time\n"
        "started = time.perf_counter()\n"
        f"{statement}\n"
        "print(time.perf_counter() - started)"
    )
    runs = []
    for _ in range(3):
        result = subprocess.run(
            [sys.executable, "-c", code], check=True, capture_output=True, text=True
        )
        runs.append(float(result.stdout))
    return statistics.median(runs)


class Boto3:
    how = {
        "create": "put_object(IfNoneMatch='*')",
        "match": "put_object(IfMatch=etag)",
        "meta": "put_object(Metadata=) / head_object()['Metadata']",
        "sha256": "put_object(ChecksumAlgorithm='SHA256') / head_object(ChecksumMode='ENABLED')",
        "presign": "generate_presigned_url('get_object')",
        "path": "Config(s3={'addressing_style': 'path'})",
    }

    def __init__(self, endpoint):
        import boto3
        import botocore.config

        config = botocore.config.Config(signature_version="s3v4", s3={"addressing_style": "path"})
        session = boto3.session.Session()
        self.client = session.client("s3", endpoint_url=endpoint, config=config)

    def head(self, key):
        return self.client.head_object(Bucket=BUCKET, Key=key)

    def etag(self, key):
        return self.head(key)["ETag"]

    def put(self, key, data, **options):
        self.client.put_object(Bucket=BUCKET, Key=key, Body=data, **options)

    def put_file(self, key, path):
        with open(path, "rb") as file:
            self.put(key, file)

    def get_file(self, key, path):
        self.client.download_file(BUCKET, key, str(path))

    def put_create(self, key, data):
        self.put(key, data, IfNoneMatch="*")

    def put_if_match(self, key, data, etag):
        self.put(key, data, IfMatch=etag)

    def put_meta(self, key, data, meta):
        self.put(key, data, Metadata=meta)

    def read_meta(self, key):
        return self.head(key)["Metadata"]

    def put_sha256(self, key, data):
        self.put(key, data, ChecksumAlgorithm="SHA256")

    def read_sha256(self, key):
        head = self.client.head_object(Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        return head.get("ChecksumSHA256")

    def presign(self, key):
        params = {"Bucket": BUCKET, "Key": key}
        return self.client.generate_presigned_url("get_object", Params=params, ExpiresIn=300)


class Obstore:
    how = {
        "create": "put(mode='create')",
        "match": "put(mode={'e_tag': etag})",
        "meta": "put(attributes={'k': v}) / get().attributes (head() has no metadata)",
        "sha256": "S3Store(checksum_algorithm='sha256'); head() has no checksum field, "
        "read back via sign('HEAD') + x-amz-checksum-mode. obstore sends x-amz-checksum-sha256 "
        "but not x-amz-sdk-checksum-algorithm, which moto needs before it stores a checksum",
        "presign": "sign(store, 'GET', key, timedelta)",
        "path": "S3Store(endpoint=..., virtual_hosted_style_request=False)",
    }

    def __init__(self, endpoint):
        import obstore
        from obstore.store import S3Store

        self.obstore = obstore
        options = {
            "endpoint": endpoint,
            "region": "us-east-1",
            "virtual_hosted_style_request": False,
            "client_options": {"allow_http": True},
        }
        self.store = S3Store(BUCKET, **options)
        self.sha_store = S3Store(BUCKET, checksum_algorithm="sha256", **options)

    def head(self, key):
        return self.obstore.head(self.store, key)

    def etag(self, key):
        return self.head(key)["e_tag"]

    def put(self, key, data):
        self.obstore.put(self.store, key, data)

    def put_file(self, key, path):
        self.obstore.put(self.store, key, Path(path))

    def get_file(self, key, path):
        with open(path, "wb") as file:
            for chunk in self.obstore.get(self.store, key):
                file.write(chunk)

    def put_create(self, key, data):
        self.obstore.put(self.store, key, data, mode="create")

    def put_if_match(self, key, data, etag):
        self.obstore.put(self.store, key, data, mode={"e_tag": etag})

    def put_meta(self, key, data, meta):
        self.obstore.put(self.store, key, data, attributes=meta)

    def read_meta(self, key):
        return self.obstore.get(self.store, key).attributes

    def put_sha256(self, key, data):
        self.obstore.put(self.sha_store, key, data)

    def read_sha256(self, key):
        # head() returns no checksum, so send a signed HEAD that asks for it
        url = self.obstore.sign(self.store, "HEAD", key, timedelta(minutes=5))
        request = urllib.request.Request(
            url, method="HEAD", headers={"x-amz-checksum-mode": "ENABLED"}
        )
        return urllib.request.urlopen(request).headers.get("x-amz-checksum-sha256")

    def presign(self, key):
        return self.obstore.sign(self.store, "GET", key, timedelta(minutes=5))


class S3fs:
    how = {
        "create": "pipe_file(mode='create') -> FileExistsError",
        "match": "pipe_file(IfMatch=etag) (kwarg passthrough)",
        "meta": "pipe_file(Metadata=) / fs.metadata()",
        "sha256": "pipe_file(ChecksumAlgorithm='SHA256'); info() has no checksum, "
        "read back via raw call_s3('head_object', ChecksumMode='ENABLED')",
        "presign": "fs.sign() / fs.url()",
        "path": "client_kwargs endpoint_url + config_kwargs s3.addressing_style=path",
    }

    def __init__(self, endpoint):
        import s3fs

        self.fs = s3fs.S3FileSystem(
            client_kwargs={"endpoint_url": endpoint},
            skip_instance_cache=True,
            config_kwargs={"s3": {"addressing_style": "path"}},
        )

    def head(self, key):
        return self.fs.info(f"{BUCKET}/{key}", refresh=True)

    def etag(self, key):
        return self.head(key)["ETag"]

    def put(self, key, data, **options):
        self.fs.pipe_file(f"{BUCKET}/{key}", data, **options)

    def put_file(self, key, path):
        self.fs.put_file(str(path), f"{BUCKET}/{key}")

    def get_file(self, key, path):
        self.fs.get_file(f"{BUCKET}/{key}", str(path))

    def put_create(self, key, data):
        self.put(key, data, mode="create")

    def put_if_match(self, key, data, etag):
        self.put(key, data, IfMatch=etag)

    def put_meta(self, key, data, meta):
        self.put(key, data, Metadata=meta)

    def read_meta(self, key):
        return self.fs.metadata(f"{BUCKET}/{key}")

    def put_sha256(self, key, data):
        self.put(key, data, ChecksumAlgorithm="SHA256")

    def read_sha256(self, key):
        head = self.fs.call_s3("head_object", Bucket=BUCKET, Key=key, ChecksumMode="ENABLED")
        return head.get("ChecksumSHA256")

    def presign(self, key):
        return self.fs.sign(f"{BUCKET}/{key}", expiration=300)


def timed(step, count):
    started = time.perf_counter()
    for index in range(count):
        step(index)
    return time.perf_counter() - started


def describe(error):
    text = str(error)
    first_line = text.splitlines()[0][:110] if text else ""
    return f"{type(error).__name__}: {first_line}"


def check_features(client, name, endpoint):
    lines = {}

    def check(feature, probe):
        try:
            ok, note = probe()
        except Exception as error:  # noqa: BLE001 - report whatever the client raised
            ok, note = False, describe(error)
        line = ("yes" if ok else "NO") + f" - {client.how[feature]}"
        lines[feature] = line + (f" [{note}]" if note else "")

    def create():
        key = f"{name}/create"
        client.put_create(key, b"first")
        try:
            client.put_create(key, b"second")
        except Exception as error:  # noqa: BLE001 - each client refuses with its own type
            return True, f"2nd refused: {describe(error)}"
        return False, "2nd create-PUT succeeded"

    def match():
        key = f"{name}/match"
        client.put(key, b"v1")
        old = client.etag(key)
        client.put_if_match(key, b"v2", old)
        try:
            client.put_if_match(key, b"v3", old)
        except Exception as error:  # noqa: BLE001 - each client refuses with its own type
            return True, f"stale etag refused: {describe(error)}"
        return False, "PUT with stale etag succeeded"

    def meta():
        client.put_meta(f"{name}/meta", b"m", {"purpose": "bench"})
        got = client.read_meta(f"{name}/meta")
        return got.get("purpose") == "bench", f"got {dict(got)}"

    def sha256():
        data = b"checksum me" * 100
        client.put_sha256(f"{name}/sha", data)
        want = base64.b64encode(hashlib.sha256(data).digest()).decode()
        got = client.read_sha256(f"{name}/sha")
        return got == want, None if got == want else f"got {got!r}, want {want!r}"

    def presign():
        client.put(f"{name}/signed", b"signed body")
        body = urllib.request.urlopen(client.presign(f"{name}/signed")).read()
        return body == b"signed body", None

    def path():
        url = client.presign(f"{name}/signed")
        return url.startswith(f"{endpoint}/{BUCKET}/"), url.split("?")[0]

    probes = {
        "create": create,
        "match": match,
        "meta": meta,
        "sha256": sha256,
        "presign": presign,
        "path": path,
    }
    for feature, probe in probes.items():
        check(feature, probe)
    return lines


def main():
    os.environ.update({
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
        "AWS_SESSION_TOKEN": "test",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    })
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"

    client_classes = {"boto3": Boto3, "obstore": Obstore, "s3fs": S3fs}
    installed = {}
    for name, client_class in client_classes.items():
        if importlib.util.find_spec(name) is None:
            print(f"skip {name}: not installed")
        else:
            installed[name] = client_class
    if not installed:
        return

    if "boto3" in installed:
        Boto3(endpoint).client.create_bucket(Bucket=BUCKET)
    else:
        urllib.request.urlopen(urllib.request.Request(f"{endpoint}/{BUCKET}", method="PUT"))

    rows, feature_lines = {}, {}
    with tempfile.TemporaryDirectory() as tmp_dir:
        big = Path(tmp_dir, "big.bin")
        big.write_bytes(os.urandom(BIG))
        small = os.urandom(SMALL)
        for name, client_class in installed.items():
            client = client_class(endpoint)
            client.put(f"{name}/tiny", b"x" * 100)
            row = rows[name] = {"import (s, median of 3)": import_seconds(IMPORTS[name])}
            row[f"{N_HEAD} HEAD (s)"] = timed(lambda index: client.head(f"{name}/tiny"), N_HEAD)
            row[f"{N_SMALL} PUT 64 KiB (s)"] = timed(
                lambda index: client.put(f"{name}/small/{index}", small), N_SMALL
            )
            row[f"{N_BIG} PUT 20 MiB file (s)"] = timed(
                lambda index: client.put_file(f"{name}/big/{index}", big), N_BIG
            )
            downloaded = Path(tmp_dir, f"{name}.out")
            row[f"{N_GET} GET 20 MiB to file (s)"] = timed(
                lambda index: client.get_file(f"{name}/big/0", downloaded), N_GET
            )
            size = downloaded.stat().st_size
            assert size == BIG, f"{name}: downloaded {size} bytes"
            feature_lines[name] = check_features(client, name, endpoint)
    server.stop()

    names = list(rows)
    print(f"\n{'metric':<26}" + "".join(f"{name:>10}" for name in names))
    for metric in rows[names[0]]:
        print(f"{metric:<26}" + "".join(f"{rows[name][metric]:>10.3f}" for name in names))
    for name in names:
        print(f"\n{name} features:")
        for feature, line in feature_lines[name].items():
            print(f"  {feature:<8} {line}")


if __name__ == "__main__":
    main()
