"""Storage inputs on the service: live blobs by Content-MD5, parallel uploads, and SAS URLs for tasks.

Uploads set Content-MD5 from the local file, so the next run compares hashes only. A file the plan hashed is
read once to upload it (hashed as it is sent unless its stat data vouches for its MD5); a file the plan left
unhashed (:mod:`batchrun.local_inputs`) is hashed just before it is sent. Thanks to the hash cache
(:mod:`batchrun.hash_cache`), a file is not read at all to plan it when its stat data is unchanged.
Blobs batchrun uploads carry metadata ``batchrun_workload`` so pruning never deletes somebody else's blob.
SAS: read+list on input containers, create+write on the outputs container; signed by the account key, or by a
user delegation key when the target uses Entra ID.
"""

from __future__ import annotations

import base64
import hashlib
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import suppress
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, BinaryIO, cast

import msgspec
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import (
    BlobServiceClient,
    ContainerSasPermissions,
    ContentSettings,
    generate_container_sas,
)

from batchrun.azure.failures import error_code, status_of, translated
from batchrun.azure.parallel import run_parallel
from batchrun.errors import ApplyError
from batchrun.hash_cache import RACY_NS, HashCache, Stat, md5_of, md5_read
from batchrun.plan.live import BLOB_WORKLOAD_KEY, LiveInput, PreparedInput
from batchrun.target import Target

UPLOAD_THREADS = 8


class _HashingReader:
    """A file streamed to an upload, its MD5 computed from the bytes sent.

    It stays seekable so the storage SDK can rewind and resend after a transient error; bytes read again
    after a rewind are not hashed twice. If reads ever skip ahead (nothing here does that), the file is
    hashed again from disk instead.
    """

    def __init__(self, handle: BinaryIO, path: Path) -> None:
        self._handle = handle
        self._path = path
        self._digest = hashlib.md5(usedforsecurity=False)
        self._hashed = 0  # bytes [0, _hashed) are in the digest
        self._gap = False

    def read(self, size: int = -1) -> bytes:
        start = self._handle.tell()
        data = self._handle.read(size)
        if start > self._hashed:
            self._gap = True
        elif start + len(data) > self._hashed:
            self._digest.update(data[self._hashed - start :])
            self._hashed = start + len(data)
        return data

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._handle.seek(offset, whence)

    def tell(self) -> int:
        return self._handle.tell()

    def md5(self) -> str:
        if self._gap:
            return md5_of(self._path)
        return base64.b64encode(self._digest.digest()).decode()


def _md5_refused(error: HttpResponseError) -> bool:
    """Storage refused an upload whose bytes do not have its Content-MD5 (Azure: ``Md5Mismatch``; Azurite:
    ``InvalidOperation``, "Provided contentMD5 doesn't match")."""
    if status_of(error) != 400:
        return False
    code, message = error_code(error), str(getattr(error, "message", "") or "")
    return code == "Md5Mismatch" or (code == "InvalidOperation" and "contentMD5 doesn't match" in message)


def read_input(service: BlobServiceClient, prepared: PreparedInput, workload: str) -> LiveInput:
    """Blobs under the input's prefix with their Content-MD5 and whether this workload uploaded them."""
    container = service.get_container_client(prepared.container)
    blobs: dict[str, tuple[str, bool]] = {}
    with translated(f"listing blobs of storage.input/{prepared.name}"):
        try:
            for blob in container.list_blobs(name_starts_with=prepared.prefix or None, include=["metadata"]):
                md5 = blob.content_settings.content_md5
                encoded = base64.b64encode(bytes(md5)).decode() if md5 else ""
                owned = (blob.metadata or {}).get(BLOB_WORKLOAD_KEY) == workload
                blobs[blob.name] = (encoded, owned)
        except ResourceNotFoundError:
            return LiveInput(prepared.name, container_exists=False)
    return LiveInput(prepared.name, container_exists=True, blobs=blobs)


def container_exists(service: BlobServiceClient, name: str) -> bool:
    with translated(f"reading container {name}"):
        try:
            service.get_container_client(name).get_container_properties()
        except ResourceNotFoundError:
            return False
    return True


def create_container(service: BlobServiceClient, name: str) -> None:
    # Exists: created by an earlier interrupted run or a concurrent one, which is the goal.
    with translated(f"creating container {name}"), suppress(ResourceExistsError):
        service.create_container(name)


def upload_files(
    service: BlobServiceClient,
    container: str,
    files: Sequence[Mapping[str, Any]],
    workload: str,
    progress: Callable[[str], None] = lambda _blob: None,
    hash_cache: str | None = None,
) -> None:
    """Upload in parallel; each blob gets its Content-MD5 and the workload's mark.

    A file the plan did not hash (``md5`` None, see :mod:`batchrun.local_inputs`) is hashed on its upload's
    thread just before it is sent, while it still has its planned stat data, and its MD5 is remembered in
    ``hash_cache`` (the plan's hash cache file) so that the next plan only stats it."""
    client = service.get_container_client(container)
    hashes = HashCache(Path(hash_cache)) if hash_cache else None

    def upload(item: Mapping[str, Any]) -> None:
        path = Path(str(item["path"]))
        blob = str(item["blob"])
        # The plan's stat data vouches for its MD5 while the file keeps it (see batchrun.hash_cache): such a
        # file is read once and not hashed again; any other is hashed from the bytes sent.
        planned = list(item.get("stat") or ())
        changed = ApplyError(
            f"{path} changed after the plan was made; run the plan again so it uploads what you see now."
        )
        with translated(f"uploading {blob} to container {container}"), path.open("rb") as handle:
            vouched = bool(planned) and list(Stat.of(handle.fileno())) == planned
            if planned and planned[0] != int(item["size"]):  # the stat data is of another file than planned
                raise changed
            md5 = item.get("md5")
            hashed_at = 0
            if md5 is None:  # not hashed by the plan: hashed now, as the file it planned
                if not vouched:
                    raise changed
                hashed_at = time.time_ns()
                md5 = md5_read(handle)
                handle.seek(0)
                if list(Stat.of(handle.fileno())) != planned:
                    raise changed
                # As in the hash cache: stat data vouches for what was hashed only when the file was last
                # modified well before; else a change within the same timestamp tick could go unseen, and
                # the bytes sent are hashed as they are sent and checked too.
                vouched = hashed_at - planned[1] >= RACY_NS
            reader = _HashingReader(handle, path)
            try:
                client.upload_blob(
                    blob,
                    handle if vouched else cast(Any, reader),  # a file-like object to the SDK
                    overwrite=True,
                    length=int(item["size"]),
                    content_settings=ContentSettings(content_md5=bytearray(base64.b64decode(str(md5)))),
                    metadata={BLOB_WORKLOAD_KEY: workload},
                )
            except HttpResponseError as error:
                if _md5_refused(error):  # storage checked the content against the planned MD5
                    raise changed from None
                raise
            # Vouched for: the file has the planned stat data still once sent, so the planned content went.
            unchanged = list(Stat.of(handle.fileno())) == planned if vouched else reader.md5() == md5
            if not unchanged:
                # What was sent is not what the plan showed: never leave it under the planned MD5.
                with suppress(ResourceNotFoundError):
                    client.delete_blob(blob)
                raise changed
        if hashes is not None and item.get("md5") is None:
            hashes.add(path, Stat(*planned), str(md5), hashed_at)
        progress(blob)

    try:
        run_parallel(upload, files, UPLOAD_THREADS)
    finally:
        if hashes is not None:  # what was sent is remembered, even when another file failed
            hashes.save(prune=False)


def delete_blobs(service: BlobServiceClient, container: str, names: Iterable[str]) -> None:
    client = service.get_container_client(container)
    for name in names:
        with translated(f"deleting blob {name} from container {container}"), suppress(ResourceNotFoundError):
            client.delete_blob(name)


def delete_container(service: BlobServiceClient, name: str) -> None:
    with translated(f"deleting container {name}"), suppress(ResourceNotFoundError):
        service.delete_container(name)


class SasSigner(msgspec.Struct):
    """Container SAS URLs for one apply; the user delegation key is fetched once, on first use."""

    service: BlobServiceClient
    target: Target
    lifetime: timedelta
    _delegation_key: Any = None
    _expiry: datetime | None = None

    def _times(self) -> tuple[datetime, datetime]:
        if self._expiry is None:
            self._expiry = datetime.now(timezone.utc) + self.lifetime
        # A few minutes of slack for clock skew between this machine and the service.
        return datetime.now(timezone.utc) - timedelta(minutes=5), self._expiry

    def container_url(self, container: str, permission: ContainerSasPermissions) -> str:
        start, expiry = self._times()
        if self.target.storage_key is not None:
            token = generate_container_sas(
                self.target.storage_account,
                container,
                account_key=self.target.storage_key,
                permission=permission,
                expiry=expiry,
                start=start,
            )
        else:
            if self._delegation_key is None:
                with translated("getting a user delegation key for SAS URLs"):
                    self._delegation_key = self.service.get_user_delegation_key(start, expiry)
            token = generate_container_sas(
                self.target.storage_account,
                container,
                user_delegation_key=self._delegation_key,
                permission=permission,
                expiry=expiry,
                start=start,
            )
        return f"{self.target.blob_url.rstrip('/')}/{container}?{token}"

    def input_url(self, container: str) -> str:
        return self.container_url(container, ContainerSasPermissions(read=True, list=True))

    def output_url(self, container: str) -> str:
        return self.container_url(container, ContainerSasPermissions(write=True, create=True))
