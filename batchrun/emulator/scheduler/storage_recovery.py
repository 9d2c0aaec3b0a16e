"""After a storage crash: the task outputs of the loss window are checked again and uploaded once more.

A storage service that acknowledges writes before they are durable (Azurite saves its blob index every 5 s)
forgets, when it crashes, the blobs written shortly before. Whoever supervises the storage service knows that
window; the emulator knows what its tasks uploaded (:mod:`batchrun.emulator.node.upload_journal`). The
supervisor calls :func:`storage_lost` as soon as it finds storage dead, naming the moment from which
acknowledged writes may be lost, and :meth:`StorageLoss.recover` once storage serves again:

1. it waits until every output upload that began before the restart has been answered (acknowledged ones are
   then in the journal), at most :data:`SETTLE_SECONDS`;
2. for each blob uploaded in the window (its latest upload only), storage is read with the account key (or the
   output's own SAS outside the linked account); a missing blob, or one with other content, is uploaded again
   from the task's folder, if the file still has the content uploaded then;
3. an output that cannot be made to land (the file changed or is gone, storage refuses it for
   :data:`ROUNDS` rounds :data:`ROUND_PAUSE_SECONDS` apart) fails its task as Batch fails a task whose
   output upload failed: ``executionInfo.result`` failure, ``failureInfo`` UserError / FileUploadMiscError,
   the task's ``exitConditions.fileUploadError`` (else ``default``) applied for its dependency and job
   actions. A task still uploading its outputs fails when it completes. Dependent tasks that already ran, and
   a job that already completed, stay as they are.
4. application package versions: an Active version whose zip storage no longer holds goes back to Pending
   (as a version never activated), so that the next ``batchrun apply`` uploads and activates it again; tasks
   referring to it meanwhile fail with ApplicationPackageError instead of a download error on every node.
"""

from __future__ import annotations

import logging
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from typing import TYPE_CHECKING

import msgspec
from azure.core.exceptions import AzureError
from msgspec.structs import replace

from batchrun.emulator.model import internal
from batchrun.emulator.node.outputs import CannotRestore, lost_output_failure, note_lost, restore_upload
from batchrun.emulator.node.storage import container_in_account
from batchrun.emulator.node.upload_journal import RunRecorder, UploadEntry
from batchrun.emulator.packages import PACKAGE_CONTAINER, package_blob_name
from batchrun.emulator.scheduler.outcomes import exit_decision
from batchrun.emulator.store import StoreError
from batchrun.emulator.timefmt import iso, new_etag, parse_iso

if TYPE_CHECKING:
    from batchrun.emulator.scheduler.core import Scheduler

_LOG = logging.getLogger("batchrun.emulator.storage_recovery")

SETTLE_SECONDS = 60.0
ROUNDS = 3
ROUND_PAUSE_SECONDS = 5.0
CHECK_THREADS = 4


class RecoveryReport(msgspec.Struct, frozen=True):
    checked: int  # blobs uploaded in the window, each checked once
    uploaded_again: int
    lost: tuple[str, ...]  # "job/task: blob: why", for outputs that could not be made to land
    failed_tasks: tuple[str, ...]  # "job/task" marked failed (or to fail when they complete)
    pending_packages: tuple[str, ...] = ()  # "application@version" whose zip was lost: Pending again

    def summary(self) -> str:
        text = f"{self.checked} output blob(s) checked, {self.uploaded_again} uploaded again"
        if self.lost:
            failed = ", ".join(self.failed_tasks) or "none"
            text += f", {len(self.lost)} lost for good; failed task(s): {failed}"
        if self.pending_packages:
            text += (
                f"; package version(s) whose zip was lost, Pending until the next apply uploads it: "
                f"{', '.join(self.pending_packages)}"
            )
        return text


class StorageLoss:
    """One storage crash, from the moment it was noticed until its recovery has run."""

    def __init__(self, scheduler: Scheduler, since: float) -> None:
        self.scheduler = scheduler
        self.since = since
        self._hold = ExitStack()
        self._hold.enter_context(scheduler.upload_journal.held())

    def recover(self) -> RecoveryReport:
        """Check the window's uploads again (call once storage serves again); releases the journal."""
        journal = self.scheduler.upload_journal
        try:
            with journal.recovery_lock:
                if not journal.settle(journal.clock(), SETTLE_SECONDS):
                    _LOG.warning("uploads still under way after %.0f s; checking anyway", SETTLE_SECONDS)
                entries = latest_per_blob(journal.since(self.since))
                report = self._check(entries)
                return replace(report, pending_packages=tuple(packages_without_zip(self.scheduler)))
        finally:
            self._hold.close()

    def release(self) -> None:
        """Forget this loss without a recovery (storage could not be restarted, or the emulator stops)."""
        self._hold.close()

    def _check(self, entries: list[UploadEntry]) -> RecoveryReport:
        storage = self.scheduler.storage
        journal = self.scheduler.upload_journal
        uploaded_again = 0
        lost: list[tuple[UploadEntry, str]] = []
        pending = entries
        for round_number in range(1, ROUNDS + 1):
            retry: list[UploadEntry] = []

            def check(entry: UploadEntry) -> tuple[UploadEntry, bool | CannotRestore]:
                recorder = RunRecorder(journal, entry.job_id, entry.task_id, entry.started, entry.task_dir)
                try:
                    return entry, restore_upload(entry, storage, recorder)
                except CannotRestore as error:
                    return entry, error

            with ThreadPoolExecutor(CHECK_THREADS, thread_name_prefix="output-recheck") as pool:
                for entry, result in pool.map(check, pending):
                    if isinstance(result, CannotRestore):
                        if result.lasting or round_number == ROUNDS:
                            lost.append((entry, str(result)))
                        else:
                            retry.append(entry)
                    elif result:
                        uploaded_again += 1
                        _LOG.warning("storage had lost %s; uploaded it again", entry)
            if not retry:
                break
            if self.scheduler.stopping:
                lost.extend((entry, "the emulator stopped before storage took it") for entry in retry)
                break
            pending = retry
            time.sleep(ROUND_PAUSE_SECONDS)
        failed: list[str] = []
        for entry, reason in lost:
            _LOG.error("storage lost %s and it cannot be uploaded again: %s", entry, reason)
            note_lost(entry, reason)
            name = self._fail_task(entry, reason)
            if name and name not in failed:
                failed.append(name)
        return RecoveryReport(
            checked=len(entries),
            uploaded_again=uploaded_again,
            lost=tuple(f"{e.job_id}/{e.task_id}: {e.blob_name}: {reason}" for e, reason in lost),
            failed_tasks=tuple(failed),
        )

    def _fail_task(self, entry: UploadEntry, reason: str) -> str | None:
        """Fail the run that uploaded ``entry`` if it still stands as that run; its name, else None."""
        scheduler, model = self.scheduler, self.scheduler.model
        failure = lost_output_failure(entry, reason)
        name = f"{entry.job_id}/{entry.task_id}"
        with model.lock:
            job_tasks = model.tasks.get(entry.job_id)
            task = job_tasks.by_id.get(entry.task_id) if job_tasks is not None else None
            if job_tasks is None or task is None:
                return None  # deleted since
            info = task.get("executionInfo") or {}
            run = scheduler.running.get((entry.job_id, entry.task_id))
            if run is not None and task["state"] in ("running", "preparing"):
                launched = info.get("startTime")
                if not launched or parse_iso(str(launched)) > entry.started:
                    return None  # a later run of the task, which uploads its outputs itself
                if run.lost_output is None:
                    run.lost_output = failure
                return name
            current = info.get("startTime") == iso(entry.started)
            if task["state"] != "completed" or info.get("result") != "success" or not current:
                return None  # failed anyway, or run again since
            job_tasks.begin_change(task)
            info["result"] = "failure"
            info["failureInfo"] = failure
            job_tasks.end_change(task)
            decision = exit_decision(task, False, info.get("exitCode"), "fileupload")
            internal(task)["dependencyAction"] = decision.dependency_action
            try:
                with model.store.transaction():
                    node_info = task.get("nodeInfo") or {}
                    node = model.nodes.get(str(node_info.get("poolId")), {}).get(str(node_info.get("nodeId")))
                    if node is not None and node.get("totalTasksSucceeded", 0) > 0:
                        node["totalTasksSucceeded"] -= 1
                        model.save_node(str(node_info["poolId"]), node)
                    model.save_task(entry.job_id, task)
                    scheduler.tasks.after_completion(entry.job_id, task, decision)
            except StoreError as error:
                _LOG.error("the failure of %s could not be saved: %s", name, error)
                scheduler.resync()
            model.notify()
            return name


def latest_per_blob(entries: list[UploadEntry]) -> list[UploadEntry]:
    """The last upload of each blob (a later upload of a blob name replaces what an earlier one wrote)."""
    latest: dict[tuple[str, str], UploadEntry] = {}
    for entry in entries:
        latest[(entry.container_base, entry.blob_name)] = entry
    return sorted(latest.values(), key=lambda entry: entry.acknowledged)


def packages_without_zip(scheduler: Scheduler) -> list[str]:
    """Active package versions whose zip storage does not hold go back to Pending; their names.

    Every Active version is checked (there are few): its zip was uploaded before its activation, at any time.
    """
    model = scheduler.model
    with model.lock:
        active = [
            (key, model.applications[key]["name"], version, package.get("etag"))
            for key, versions in model.packages.items()
            if key in model.applications
            for version, package in versions.items()
            if package.get("properties", {}).get("state") == "Active"
        ]
    if not active:
        return []
    missing = []
    try:
        with container_in_account(scheduler.storage, PACKAGE_CONTAINER) as container:
            for key, name, version, etag in active:
                if not container.get_blob_client(package_blob_name(name, version)).exists():
                    missing.append((key, name, version, etag))
    except AzureError as error:
        _LOG.error("the package zips could not be checked after the storage restart: %s", error)
        return []
    names = []
    with model.lock:
        for key, name, version, etag in missing:
            pair = (name, version)
            package = model.packages.get(key, {}).get(version)
            if package is None or package.get("etag") != etag:
                continue  # changed meanwhile (uploaded and activated again, or deleted)
            package["properties"]["state"] = "Pending"
            package["properties"].pop("lastActivationTime", None)
            package["etag"] = f'W/"{new_etag()}"'
            try:
                model.save_package(key, package)
            except StoreError as error:
                _LOG.error("package %s@%s could not be set back to Pending: %s", name, version, error)
                continue
            _LOG.error("storage lost the zip of package %s@%s: Pending until it is uploaded again", *pair)
            names.append(f"{name}@{version}")
    return names


def storage_lost(scheduler: Scheduler, since: float) -> StorageLoss:
    """Storage was found dead: writes it acknowledged from ``since`` (``time.time()``) on may be lost.

    Holds the upload journal until :meth:`StorageLoss.recover` (or :meth:`StorageLoss.release`) is called.
    """
    return StorageLoss(scheduler, since)
