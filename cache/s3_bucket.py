"""An Amazon S3 (or S3-compatible) bucket (cache.buckets.Bucket) on boto3.

Credentials, region and profile come the SDK's usual way (AWS_ACCESS_KEY_ID, AWS_PROFILE,
AWS_REGION, ~/.aws/config, instance roles); the endpoint of an S3-compatible service from
`REELFLOW_S3_ENDPOINT_URL` (or the SDK's own AWS_ENDPOINT_URL_S3), and path-style addressing
from `REELFLOW_S3_ADDRESSING_STYLE=path`. Nothing reelflow logs or stores names a key.

Versions are ETags; a conditional write carries `If-None-Match: *` (create only if absent) or
`If-Match: <etag>`, and S3 answers 412, or 409 while another conditional write of the object is
in flight (then the write is made again, as S3 asks, and meets the other's result). Every object is
written with `ChecksumAlgorithm=SHA256`, so S3 keeps the SHA-256 of the bytes it holds and
returns it on HEAD: the checksum that tells an object still holds what was written.

A service that ignores conditional writes is detected at start-up (`check_access` writes a
probe twice) and said; its writes then look before they write, which narrows the race
between machines without closing it.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from cache.buckets import (ABSENT, ANY, TIMEOUT_S, Bucket, BucketError, BucketTarget, Conflict,
                           Expect, ObjectStat)
from cache.keys import file_digest

CHECK_TIMEOUT_S = (5, 5)
RACING_ATTEMPTS = 3
_CONFLICTS = {"PreconditionFailed", "412"}
_RACING = {"ConditionalRequestConflict", "409"}
_MISSING = {"NoSuchKey", "404", "NotFound"}


class S3Bucket(Bucket):
    checksum_key = "checksum-sha256"

    def __init__(self, target: BucketTarget, *, endpoint_url: str | None = None,
                 addressing_style: str = "auto"):
        self.target = target
        session = boto3.session.Session()

        def client(timeouts: tuple[float, float], attempts: int):
            return session.client("s3", endpoint_url=endpoint_url, config=Config(
                connect_timeout=timeouts[0], read_timeout=timeouts[1], signature_version="s3v4",
                retries={"mode": "standard", "total_max_attempts": attempts},
                s3={"addressing_style": addressing_style}))

        self.client = client(TIMEOUT_S, 4)
        self._checker = client(CHECK_TIMEOUT_S, 2)  # a start-up check says soon what is wrong
        self.conditional = True  # until check_access finds the service ignores conditions

    def stat(self, name: str) -> ObjectStat | None:
        with self._failures("read metadata of", name):
            try:
                head = self.client.head_object(Bucket=self.target.bucket, Key=name,
                                               ChecksumMode="ENABLED")
            except ClientError as error:
                if _code(error) in _MISSING:
                    return None
                raise
        return ObjectStat(name=name, size=head["ContentLength"], version=head["ETag"],
                          checksum=head.get("ChecksumSHA256"), metadata=head.get("Metadata", {}),
                          updated=head["LastModified"].timestamp())

    def read(self, name: str) -> bytes | None:
        with self._failures("download", name):
            try:
                reply = self.client.get_object(Bucket=self.target.bucket, Key=name)
            except ClientError as error:
                if _code(error) in _MISSING:
                    return None
                raise
            try:
                return reply["Body"].read()
            finally:
                reply["Body"].close()

    def download(self, name: str, path: Path) -> None:
        with self._failures("download", name):
            body = self.client.get_object(Bucket=self.target.bucket, Key=name)["Body"]
            try:
                with open(path, "wb") as handle:
                    for chunk in body.iter_chunks(1 << 20):
                        handle.write(chunk)
            finally:
                body.close()

    def write(self, name: str, body: bytes | Path, *, content_type: str,
              expect: Expect = ANY, metadata: Mapping[str, str] | None = None,
              cache_control: str | None = None) -> str:
        extra = {"Metadata": dict(metadata)} if metadata else {}
        if cache_control:
            extra["CacheControl"] = cache_control
        if expect is not ANY and not self.conditional:
            self._look_before_writing(name, expect)
        elif expect is ABSENT:
            extra["IfNoneMatch"] = "*"
        elif expect is not ANY:
            extra["IfMatch"] = expect
        for attempt in range(1, RACING_ATTEMPTS + 1):
            try:
                with self._failures("upload", name), _opened(body) as data:
                    return self.client.put_object(
                        Bucket=self.target.bucket, Key=name, Body=data, ContentType=content_type,
                        ChecksumAlgorithm="SHA256", **extra)["ETag"]
            except _Racing:  # S3 asks for the write again: it raced another conditional one
                if attempt == RACING_ATTEMPTS:
                    raise

    def delete(self, name: str, *, expect: str | None = None) -> None:
        condition = {"IfMatch": expect} if expect is not None and self.conditional else {}
        with self._failures("delete", name):
            try:
                self.client.delete_object(Bucket=self.target.bucket, Key=name, **condition)
            except ClientError as error:
                if _code(error) not in _MISSING:
                    raise

    def list(self, folder: str, *, full: bool = False) -> list[ObjectStat]:
        prefix = folder + "/"
        listed = []
        with self._failures("list", prefix):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.target.bucket, Prefix=prefix)
            for page in pages:
                listed += [ObjectStat(name=item["Key"], size=item["Size"], version=item["ETag"],
                                      checksum=None, metadata={},
                                      updated=item["LastModified"].timestamp())
                           for item in page.get("Contents", [])]
        if not full:
            return listed
        # A listing carries neither metadata nor checksums; an object gone since is left out.
        return [found for item in listed if (found := self.stat(item.name)) is not None]

    def url(self, name: str, expiry_s: int) -> tuple[str, bool]:
        with self._failures("sign a URL for", name):
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.target.bucket, "Key": name},
                ExpiresIn=expiry_s), True

    def checksum(self, path: Path) -> str:
        return base64.b64encode(bytes.fromhex(file_digest(path))).decode()  # the SHA-256

    def check_access(self) -> list[str]:
        """The bucket exists and this machine may read, write and delete in it (a probe object
        under the prefix, written twice, the second time only if absent), and whether the
        service honours conditional writes and keeps SHA-256 checksums."""
        where = self.target.uri()
        probe = self.target.object_name(".reelflow-probe", uuid.uuid4().hex)
        steps = [("s3:ListBucket", lambda: self._checker.head_bucket(Bucket=self.target.bucket)),
                 ("s3:PutObject", lambda: self.write(probe, b"probe", content_type="text/plain")),
                 ("s3:GetObject", lambda: self.stat(probe))]
        found = None
        for permission, step in steps:
            try:
                found = step()
            except (ClientError, BucketError) as error:
                code = _code(error.__cause__ if isinstance(error, BucketError) else error)
                if code in {"404", "NoSuchBucket"}:
                    raise BucketError(f"{where}: the bucket does not exist") from None
                if code in {"403", "AccessDenied", "AllAccessDisabled"}:
                    raise BucketError(f"{where}: access refused: this machine needs "
                                      f"{permission} on the bucket") from None
                raise BucketError(f"{where}: {_short(error)}") from None
            except BotoCoreError as error:
                raise BucketError(f"{where}: cannot reach the service: {_short(error)}") from None
        warnings = []
        if found is None or found.checksum is None:
            raise BucketError(f"{where}: the service keeps no SHA-256 checksum of an object "
                              "(x-amz-checksum-sha256), which reelflow needs to tell a stored "
                              "object is intact")
        try:
            self.write(probe, b"probe", content_type="text/plain", expect=ABSENT)
            self.conditional = False
            warnings.append(f"{where}: the service ignores conditional writes (If-None-Match): "
                            "machines sharing it can overwrite each other's objects; each write "
                            "looks first, which narrows that race but cannot close it")
        except Conflict:
            pass
        except BucketError as error:
            self.conditional = False
            warnings.append(f"{where}: the service refuses conditional writes (If-None-Match: "
                            f"{_code(error.__cause__) or _short(error)}): machines sharing it can "
                            "overwrite each other's objects; each write looks first, which "
                            "narrows that race but cannot close it")
        try:
            self.delete(probe)
        except BucketError:
            warnings.append(f"{where}: cannot delete (needs s3:DeleteObject): `reelflow cache "
                            f"gc` and node leases need it; left {self.uri(probe)}")
        return warnings

    def _look_before_writing(self, name: str, expect: Expect) -> None:
        found = self.stat(name)
        if (found is not None) if expect is ABSENT else (found is None or found.version != expect):
            raise Conflict(f"upload {self.uri(name)}: it is not as it was seen")

    @contextmanager
    def _failures(self, action: str, name: str) -> Iterator[None]:
        """Any transport or API error as one BucketError naming the object; a refused
        condition as Conflict."""
        try:
            yield
        except ClientError as error:
            if _code(error) in _RACING:
                raise _Racing(f"{action} {self.uri(name)}: {_short(error)}") from None
            if _code(error) in _CONFLICTS:
                raise Conflict(f"{action} {self.uri(name)}: {_short(error)}") from None
            raise BucketError(f"{action} {self.uri(name)} failed: {_short(error)}") from error
        except (BotoCoreError, OSError) as error:
            raise BucketError(f"{action} {self.uri(name)} failed: {_short(error)}") from error


class _Racing(Conflict):
    """409 ConditionalRequestConflict: another conditional write of the object was in flight."""


@contextmanager
def _opened(body: bytes | Path) -> Iterator[object]:
    if isinstance(body, bytes):
        yield body
        return
    with open(body, "rb") as handle:
        yield handle


def _code(error: BaseException | None) -> str:
    if not isinstance(error, ClientError):
        return ""
    return str(error.response.get("Error", {}).get("Code", ""))


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:300]
