"""A Google Cloud Storage bucket (cache.buckets.Bucket) on google-cloud-storage.

Versions are generations; a conditional request carries `ifGenerationMatch` (0: the object
must not exist). The checksum is the CRC32C GCS computes of the bytes it holds, base64 of its
big-endian value. Credentials are Application Default Credentials, or none on an emulator
(STORAGE_EMULATOR_HOST). Signed URLs need a service-account key (`gcs_signing_key`).
"""

from __future__ import annotations

import base64
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path

import google_crc32c
from google.api_core.exceptions import (Forbidden, GoogleAPICallError, NotFound,
                                        PreconditionFailed)
from google.auth.credentials import AnonymousCredentials, Signing
from google.auth.exceptions import GoogleAuthError
from google.cloud import storage
from google.cloud.storage.exceptions import DataCorruption, InvalidResponse
from google.cloud.storage.retry import DEFAULT_RETRY

from cache.buckets import (ABSENT, ANY, TIMEOUT_S, Bucket, BucketError, BucketTarget, Conflict,
                           Expect, ObjectStat)

# requests' errors are OSErrors; the media errors come from the upload/download machinery
_FAILURES = (GoogleAPICallError, GoogleAuthError, OSError, DataCorruption, InvalidResponse)


class GcsBucket(Bucket):
    checksum_key = "crc32c"

    def __init__(self, target: BucketTarget, *, client: storage.Client | None = None,
                 project: str | None = None, signer: Signing | None = None):
        self.target = target
        self.client = client or storage_client(project)
        self.bucket = self.client.bucket(target.bucket)
        self.signer = signer

    def stat(self, name: str) -> ObjectStat | None:
        with self._failures("read metadata of", name):
            found = self.bucket.get_blob(name, timeout=TIMEOUT_S)
        return None if found is None else _stat(found)

    def read(self, name: str) -> bytes | None:
        with self._failures("download", name):
            try:
                return self.bucket.blob(name).download_as_bytes(timeout=TIMEOUT_S)
            except NotFound:
                return None

    def download(self, name: str, path: Path) -> None:
        with self._failures("download", name):
            self.bucket.blob(name).download_to_filename(str(path), timeout=TIMEOUT_S)

    def write(self, name: str, body: bytes | Path, *, content_type: str,
              expect: Expect = ANY, metadata: Mapping[str, str] | None = None,
              cache_control: str | None = None) -> str:
        blob = self.bucket.blob(name)
        blob.metadata = dict(metadata) if metadata else None
        blob.cache_control = cache_control
        # An unconditional write is retried (harmless twice); a conditional one is retried by
        # the client only with its precondition, so a lost reply comes back as a Conflict.
        condition = ({} if expect is ANY else
                     {"if_generation_match": 0 if expect is ABSENT else int(expect)})
        retry = {"retry": DEFAULT_RETRY} if expect is ANY else {}
        with self._failures("upload", name):
            if isinstance(body, Path):
                blob.upload_from_filename(str(body), content_type=content_type,
                                          timeout=TIMEOUT_S, **condition, **retry)
            else:
                blob.upload_from_string(body, content_type=content_type, timeout=TIMEOUT_S,
                                        **condition, **retry)
        return str(blob.generation)

    def delete(self, name: str, *, expect: str | None = None) -> None:
        condition = {} if expect is None else {"if_generation_match": int(expect)}
        with self._failures("delete", name):
            try:
                self.bucket.blob(name).delete(timeout=TIMEOUT_S, **condition)
            except NotFound:
                pass

    def list(self, folder: str, *, full: bool = False) -> list[ObjectStat]:
        prefix = folder + "/"
        with self._failures("list", prefix):
            return [_stat(blob) for blob in
                    self.client.list_blobs(self.bucket, prefix=prefix, timeout=TIMEOUT_S)]

    def url(self, name: str, expiry_s: int) -> tuple[str, bool]:
        blob = self.bucket.blob(name)
        if self.signer is None:
            return blob.public_url, False
        return blob.generate_signed_url(version="v4", expiration=timedelta(seconds=expiry_s),
                                        method="GET", credentials=self.signer), True

    def checksum(self, path: Path) -> str:
        checksum = google_crc32c.Checksum()
        with open(path, "rb") as handle:
            while chunk := handle.read(1 << 20):
                checksum.update(chunk)
        return base64.b64encode(checksum.digest()).decode()

    def check_access(self) -> list[str]:
        """The bucket exists and this machine may list it (`storage.objects.list`, which an
        object role has, unlike `storage.buckets.get`); writes are judged as they happen, as
        GCS always honours preconditions."""
        where = self.target.uri()
        try:
            list(self.client.list_blobs(self.bucket, prefix=self.target.prefix, max_results=1,
                                        timeout=TIMEOUT_S))
        except NotFound:
            raise BucketError(f"{where}: the bucket does not exist") from None
        except Forbidden as error:
            raise BucketError(f"{where}: access refused: this machine needs storage.objects.list "
                              f"and storage.objects.create ({_short(error)})") from None
        except _FAILURES as error:
            raise BucketError(f"{where}: cannot reach the service: {_short(error)}") from None
        return []

    @contextmanager
    def _failures(self, action: str, name: str) -> Iterator[None]:
        """Any transport or API error as one BucketError naming the object; a 412 as Conflict."""
        try:
            yield
        except PreconditionFailed as error:
            raise Conflict(f"{action} {self.uri(name)}: {_short(error)}") from None
        except _FAILURES as error:
            raise BucketError(f"{action} {self.uri(name)} failed: {_short(error)}") from error


def storage_client(project: str | None) -> storage.Client:
    """An anonymous client when STORAGE_EMULATOR_HOST points at an emulator, else ADC.

    Without a project, ADC's own project is used (passing None would mean "no project").
    """
    if os.environ.get("STORAGE_EMULATOR_HOST"):
        return storage.Client(project=project, credentials=AnonymousCredentials())
    return storage.Client() if project is None else storage.Client(project=project)


def signing_credentials(key_file: Path | None) -> Signing | None:
    """Service-account credentials that can sign URLs, from a JSON key file; None without one."""
    if key_file is None:
        return None
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_file(str(key_file))


def _stat(blob: storage.Blob) -> ObjectStat:
    return ObjectStat(name=blob.name, size=blob.size, version=str(blob.generation),
                      checksum=blob.crc32c, metadata=blob.metadata or {},
                      updated=blob.updated.timestamp())


def _short(error: Exception) -> str:
    return " ".join(str(error).split())[:300]
