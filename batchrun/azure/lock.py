"""The apply lock: one apply (or destroy) of a workload at a time, held in the target's own storage account.

The lock is a lease on the blob ``<workload>/lock`` in the container ``batchrun-state``, so two CI runners
on two machines see the same lock. The lease lasts :data:`LEASE_SECONDS` and a background thread renews it
while the apply runs; an apply that is killed (SIGKILL, a lost runner) holds it at most that long after its
last renewal. The blob's metadata names the holder (host, user, pid and its start time, boot id) and when it
started, so a second apply fails at once with a message naming who holds the lock and since when; unless
the holder ran on this machine and its process is gone (killed): then the apply waits the few seconds until
that lease lapses and goes on. ``--break-lock`` breaks the lease first, for a holder known to be gone
elsewhere (a lost CI runner).

Only applies with changes take the lock: a plan, or an apply with nothing to do, writes nothing. One
exception: an apply whose lock blob is missing (its first apply, or its first after a destroy: nearly always
one that writes) makes and leases it at once, beside the plan's reads
(:class:`batchrun.azure.lock_ahead.LockAhead`); when there is nothing to apply after all, it removes the blob
again.
"""

from __future__ import annotations

import functools
import getpass
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from datetime import datetime, timezone
from pathlib import Path

from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from batchrun.azure import blob_requests as blobs
from batchrun.azure.failures import error_code, status_of, translated
from batchrun.azure.storage import create_container
from batchrun.errors import TargetError
from batchrun.local.processes import is_alive, start_time
from batchrun.plan.live import STATE_CONTAINER

LOCK_CONTAINER = STATE_CONTAINER  # next to the workload's other records
LEASE_SECONDS = 15  # Blob leases last 15 to 60 seconds, or forever: a dead holder's lock lapses in 15 s.
RENEW_SECONDS = 5.0


class LockHeldError(TargetError):
    """Another apply of the same workload holds the lock."""


class LockNotMissing(Exception):
    """The lock was to be taken only if its blob was missing, and was not taken: the blob was there
    (``there``), or it could not be made now (no container yet, no right to write, storage unreachable).
    Nothing was written, or only a blob that another apply leased first."""

    def __init__(self, there: bool) -> None:
        super().__init__("the lock blob was not missing")
        self.there = there


class HeldLock:
    """The lock while it is held: ``remove_after`` may be set before the block ends (the blob is then
    deleted instead of its lease released)."""

    def __init__(self, remove_after: bool) -> None:
        self.remove_after = remove_after


def lock_blob_name(workload: str) -> str:
    return f"{workload}/lock"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@functools.lru_cache(maxsize=1)
def _process_identity(pid: int) -> tuple[tuple[str, str], ...]:
    """Who this process is (host, user, pid and its start time, boot), read once per process (a child of
    a fork has another pid, so reads its own): five reads of files and of the system, each of which let
    go of Python's lock and waited to take it back while the plan was being decided."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid())
    return (
        ("host", socket.gethostname()),
        ("user", user),
        ("pid", str(pid)),
        ("pid_start", str(start_time(pid) or "")),
        ("boot_id", _boot_id()),
    )


def _holder() -> dict[str, str]:
    return {
        **dict(_process_identity(os.getpid())),
        "started_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


class _LockBlob:
    """The workload's lock blob, its requests made through :mod:`batchrun.azure.blob_requests`."""

    def __init__(self, service: BlobServiceClient, workload: str) -> None:
        self.service, self.name = service, lock_blob_name(workload)

    def make(self, metadata: dict[str, str]) -> str:
        """Make the missing blob (a 409 when it is there, a 404 without its container); its ETag."""
        return blobs.create_empty_blob(self.service, LOCK_CONTAINER, self.name, metadata)

    def lease(
        self,
        action: str,
        lease_id: str | None = None,
        *,
        seconds: int | None = None,
        if_match: str | None = None,
    ) -> None:
        blobs.lease(
            self.service, LOCK_CONTAINER, self.name, action, lease_id, seconds=seconds, if_match=if_match
        )

    def metadata(self) -> dict[str, str]:
        return blobs.blob_metadata(self.service, LOCK_CONTAINER, self.name)

    def set_metadata(self, metadata: dict[str, str], lease_id: str) -> None:
        blobs.set_blob_metadata(self.service, LOCK_CONTAINER, self.name, metadata, lease_id)

    def delete(self, lease_id: str) -> None:
        blobs.delete_blob(self.service, LOCK_CONTAINER, self.name, lease_id)


def _holder_metadata(blob: _LockBlob) -> dict[str, str] | None:
    try:
        return blob.metadata()
    except AzureError:
        return None


def _describe_holder(meta: dict[str, str] | None) -> str:
    if meta is None:
        return "another apply (its details could not be read)"
    if not meta.get("host"):
        return "another apply (its details are not written yet)"
    return (
        f"{meta.get('user', '?')}@{meta.get('host', '?')} (pid {meta.get('pid', '?')}), "
        f"since {meta.get('started_at', '?')}"
    )


def _holder_is_gone(meta: dict[str, str] | None) -> bool:
    """True only when the holder ran on this machine, since its last boot, and its process is gone (no
    process with its pid and start time). A holder elsewhere is never judged from here."""
    if not meta or meta.get("host") != socket.gethostname() or not meta.get("boot_id"):
        return False
    if meta.get("boot_id") != _boot_id() or not meta.get("pid", "").isdigit():
        return False
    started = meta.get("pid_start", "")
    return not is_alive(int(meta["pid"]), started=int(started) if started.isdigit() else None)


def _made(blob: _LockBlob, metadata: dict[str, str]) -> str | None:
    """Make the missing lock blob with ``metadata`` (and its container, when that is missing too); its ETag,
    or None when it was there already (another apply made it first)."""
    for attempt in range(2):
        try:
            return blob.make(metadata)
        except ResourceExistsError:
            return None
        except ResourceNotFoundError:  # no container yet: the first workload on this storage account
            if attempt:
                raise
            create_container(blob.service, LOCK_CONTAINER)
    return None


def _leased_if_missing(blob: _LockBlob, lease_id: str) -> None:
    """Make the missing lock blob naming this apply, then lease it unless it was touched since (its ETag);
    :class:`LockNotMissing` otherwise."""
    try:
        made = blob.make(_holder())
    except ResourceExistsError:
        raise LockNotMissing(there=True) from None
    except AzureError:  # no container yet, no right to write, no answer: the usual way decides, if needed
        raise LockNotMissing(there=False) from None
    try:
        blob.lease("acquire", lease_id, seconds=LEASE_SECONDS, if_match=made)
    except AzureError:  # another apply leased (or touched) it first: the usual way names who
        raise LockNotMissing(there=True) from None


def _names_me(meta: dict[str, str] | None) -> bool:
    """The holder named is this very process (its pid, start time, host and boot), not one before it."""
    if meta is None:
        return False
    me = _holder()
    return all(meta.get(key) == me[key] for key in ("host", "pid", "pid_start", "boot_id"))


def break_lock(service: BlobServiceClient, workload: str) -> None:
    """Break the workload's lock now (its holder is gone, or must be stopped)."""
    with translated(f"breaking the apply lock of workload {workload}"):
        blob = _LockBlob(service, workload)
        _made(blob, {})
        with suppress(ResourceExistsError, HttpResponseError):  # 409: no lease to break
            blob.lease("break")


def _held(workload: str, meta: dict[str, str] | None) -> LockHeldError:
    return LockHeldError(
        f"workload {workload} is being applied by {_describe_holder(meta)} (lock: blob "
        f"{LOCK_CONTAINER}/{lock_blob_name(workload)}). Wait for it to finish and run again; if that "
        f"apply is gone, its lock lapses within {LEASE_SECONDS} s, or run again with --break-lock "
        "(`batchrun apply FILE --break-lock`, `batchrun destroy FILE --break-lock`) to take it now."
    )


def _write_holder(blob: _LockBlob, lease_id: str, workload: str) -> None:
    """Write who holds the lock under its lease. The lease can lapse before the write lands: an answer lost
    on the way is retried after up to 8 s, twice, and a lease lasts 15 s. Then the lease is taken again with
    the same id (Storage allows that while nobody else took it; when somebody did, the lock is theirs) and
    the write tried again."""
    for attempt in range(3):
        try:
            blob.set_metadata(_holder(), lease_id)
            return
        except HttpResponseError as error:
            if error_code(error) != "LeaseNotPresentWithBlobOperation" or attempt == 2:
                raise
        try:
            blob.lease("acquire", lease_id, seconds=LEASE_SECONDS)
        except HttpResponseError as error:
            if status_of(error) != 409:
                raise
            raise _held(workload, _holder_metadata(blob)) from None


@contextmanager
def apply_lock(
    service: BlobServiceClient,
    workload: str,
    *,
    force: bool = False,
    likely_missing: bool = False,
    remove_after: bool = False,
    only_if_missing: bool = False,
) -> Iterator[HeldLock]:
    """Hold the workload's apply lock for the block; raise LockHeldError naming the holder when taken.

    ``likely_missing``: nothing of the workload is live, so its lock blob is made first, without asking
    for a lease on a blob that is not there (a 404 fewer; when the blob is there after all, it is taken as
    always). ``remove_after``: the lock blob is deleted instead of released (a destroy leaves none; the
    :class:`HeldLock` yielded can still change it). ``only_if_missing``: the lock is taken only by making its
    missing blob; :class:`LockNotMissing` when the blob was there or could not be made."""
    with translated(f"taking the apply lock of workload {workload}"):
        if force:
            break_lock(service, workload)
        # The lock blob is made only when it is missing (the first apply of the workload): two requests
        # fewer on every other apply.
        blob = _LockBlob(service, workload)
        # A lease id of our own: an acquire whose answer was lost and is retried gets the same lease back
        # (Storage accepts an acquire that proposes the active lease's id), not "already leased".
        lease_id = str(uuid.uuid4())
        if only_if_missing:
            _leased_if_missing(blob, lease_id)
        else:
            _taken(blob, workload, lease_id, force=force, likely_missing=likely_missing)
    stop = threading.Event()

    def renew() -> None:
        while not stop.wait(RENEW_SECONDS):
            # A passing storage error: the next renewal tries again. A renewal still retrying when the block
            # ends is let go (its join times out) and meets the closed client: nothing of it may escape.
            with suppress(Exception):
                blob.lease("renew", lease_id)

    renewer = threading.Thread(target=renew, name=f"batchrun-lock-{workload}", daemon=True)
    renewer.start()
    held = HeldLock(remove_after)
    try:
        yield held
    finally:
        stop.set()
        with suppress(AzureError):  # not released: it lapses by itself
            if held.remove_after:
                blob.delete(lease_id)
            else:
                blob.lease("release", lease_id)
        renewer.join(timeout=5)  # after the release: it only waits for a renewal in flight


def _taken(blob: _LockBlob, workload: str, lease_id: str, *, force: bool, likely_missing: bool) -> None:
    """The lock's lease ``lease_id``, taken the usual way (see :func:`apply_lock`), its holder written."""
    deadline = time.monotonic() + LEASE_SECONDS + 5
    # The first apply of a workload makes the blob with its name already written, then takes the lease
    # only if nobody touched the blob since (its ETag): one request fewer than writing the name after.
    made, named = False, ""
    if likely_missing and not force:
        named, made = _made(blob, _holder()) or "", True
    while True:
        try:
            blob.lease("acquire", lease_id, seconds=LEASE_SECONDS, if_match=named or None)
            break
        except ResourceNotFoundError:
            if made:
                raise
            named, made = _made(blob, _holder()) or "", True
            continue
        except HttpResponseError as error:
            if status_of(error) == 412:  # touched since it was made: taken as any lock blob is
                named = ""
                continue
            if status_of(error) != 409:
                raise
        meta = _holder_metadata(blob)
        if _names_me(meta):  # made by this apply and leased by another, which has not written its name
            meta = {}
        # A holder killed on this machine (SIGKILL, a closed terminal) cannot renew: its lease lapses
        # within LEASE_SECONDS, so wait for that instead of failing. Never break it: another apply may
        # have taken the lock a moment ago without having written its name yet.
        if not _holder_is_gone(meta) or time.monotonic() > deadline:
            raise _held(workload, meta) from None
        time.sleep(1)
    if not named:
        _write_holder(blob, lease_id, workload)
