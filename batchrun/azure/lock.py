"""The apply lock: one apply (or destroy) of a workload at a time, held in the target's own storage account.

The lock is a lease on the blob ``<workload>/lock`` in the container ``batchrun-state``, so two CI runners
on two machines see the same lock. The lease lasts :data:`LEASE_SECONDS` and a background thread renews it
while the apply runs; an apply that is killed (SIGKILL, a lost runner) holds it at most that long after its
last renewal. The blob's metadata names the holder (host, user, pid) and when it started, so a second apply
fails at once with a message naming who holds the lock and since when. ``--break-lock`` breaks the lease
first, for a holder known to be gone.

Only applies with changes take the lock: a plan, or an apply with nothing to do, writes nothing.
"""

from __future__ import annotations

import getpass
import os
import socket
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
from azure.storage.blob import BlobClient, BlobLeaseClient, BlobServiceClient

from batchrun.azure.failures import status_of, translated
from batchrun.errors import TargetError
from batchrun.plan.live import STATE_CONTAINER

LOCK_CONTAINER = STATE_CONTAINER  # next to the workload's other records
LEASE_SECONDS = 60  # Blob leases last 15 to 60 seconds, or forever; a dead holder's lock lapses in a minute.
RENEW_SECONDS = 15.0


class LockHeldError(TargetError):
    """Another apply of the same workload holds the lock."""


def lock_blob_name(workload: str) -> str:
    return f"{workload}/lock"


def _holder() -> dict[str, str]:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return {
        "host": socket.gethostname(),
        "user": user,
        "pid": str(os.getpid()),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _describe_holder(blob: BlobClient) -> str:
    try:
        properties = blob.get_blob_properties()
    except AzureError:
        return "another apply (its details could not be read)"
    meta = properties.metadata or {}
    if not meta.get("host"):
        return "another apply (its details are not written yet)"
    return (
        f"{meta.get('user', '?')}@{meta.get('host', '?')} (pid {meta.get('pid', '?')}), "
        f"since {meta.get('started_at', '?')}"
    )


def _blob(service: BlobServiceClient, workload: str) -> BlobClient:
    container = service.get_container_client(LOCK_CONTAINER)
    with suppress(ResourceExistsError):
        container.create_container()
    blob = container.get_blob_client(lock_blob_name(workload))
    with suppress(ResourceExistsError):
        blob.upload_blob(b"", overwrite=False)
    return blob


def break_lock(service: BlobServiceClient, workload: str) -> None:
    """Break the workload's lock now (its holder is gone, or must be stopped)."""
    with translated(f"breaking the apply lock of workload {workload}"):
        blob = _blob(service, workload)
        with suppress(ResourceExistsError, HttpResponseError):  # 409: no lease to break
            BlobLeaseClient(blob).break_lease(lease_break_period=0)


@contextmanager
def apply_lock(service: BlobServiceClient, workload: str, *, force: bool = False) -> Iterator[None]:
    """Hold the workload's apply lock for the block; raise LockHeldError naming the holder when taken."""
    with translated(f"taking the apply lock of workload {workload}"):
        if force:
            break_lock(service, workload)
        blob = _blob(service, workload)
        try:
            # A lease id of our own: an acquire whose answer was lost and is retried gets the same lease
            # back (Storage accepts an acquire that proposes the active lease's id), not "already leased".
            lease = blob.acquire_lease(lease_duration=LEASE_SECONDS, lease_id=str(uuid.uuid4()))
        except HttpResponseError as error:
            if status_of(error) != 409:
                raise
            raise LockHeldError(
                f"workload {workload} is being applied by {_describe_holder(blob)} (lock: blob "
                f"{LOCK_CONTAINER}/{lock_blob_name(workload)}). Wait for it to finish and run again; if that "
                f"apply is gone, its lock lapses within {LEASE_SECONDS} s, or run again with --break-lock "
                "(`batchrun apply FILE --break-lock`, `batchrun destroy FILE --break-lock`) to take it now."
            ) from None
        blob.set_blob_metadata(_holder(), lease=lease)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(RENEW_SECONDS):
            with suppress(AzureError):  # a passing storage error: the next renewal tries again
                lease.renew()

    renewer = threading.Thread(target=renew, name=f"batchrun-lock-{workload}", daemon=True)
    renewer.start()
    try:
        yield
    finally:
        stop.set()
        renewer.join(timeout=5)
        with suppress(AzureError):  # not released: it lapses by itself
            lease.release()
