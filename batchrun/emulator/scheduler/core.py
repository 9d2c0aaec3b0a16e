"""The scheduler: one thread that reconciles pools, nodes and jobs, and worker threads that run tasks.

Everything that changes state is woken through ``model.changed`` (a condition variable): API writes and
finishing workers call ``model.notify()``, so dispatch never polls. All model access happens under
``model.lock``; task processes run outside it. Pools and nodes live in :mod:`.pools`, dispatch and outcomes in
:mod:`.tasks`, job transitions in :mod:`.jobs`.
"""

from __future__ import annotations

import functools
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import msgspec
from msgspec import field

from batchrun.emulator.config import EmulatorConfig
from batchrun.emulator.model import Body, Model, internal
from batchrun.emulator.node import (
    StorageAccess,
    TaskLaunch,
    reap_orphans,
    remove_job_directories,
    run_task,
)
from batchrun.emulator.node.upload_journal import UploadJournal
from batchrun.emulator.scheduler import nodes
from batchrun.emulator.scheduler.jobs import JobTransitions
from batchrun.emulator.scheduler.node_ops import NodeOperations
from batchrun.emulator.scheduler.pools import PoolManager
from batchrun.emulator.scheduler.runs import TaskRuns
from batchrun.emulator.scheduler.schedules import ScheduleClock
from batchrun.emulator.scheduler.task_records import RELEASE_INFO, record_prep_release, requeue
from batchrun.emulator.scheduler.tasks import RunningTask, TaskRunner
from batchrun.emulator.store import StoreError
from batchrun.emulator.timefmt import now_iso

_LOG = logging.getLogger("batchrun.emulator.scheduler")


class ReleaseRun(msgspec.Struct):
    pool_id: str
    job_id: str
    node_id: str
    cancel: threading.Event = field(default_factory=threading.Event)


class Scheduler:
    def __init__(self, config: EmulatorConfig, model: Model) -> None:
        self.config = config
        self.model = model
        self.cap = config.effective_max_running_tasks
        self.account_url = ""
        self.storage = StorageAccess(
            config.storage.blob_endpoint, config.storage.account_name, config.storage.account_key
        )
        self.running: dict[tuple[str, str], RunningTask] = {}
        # Job release runs under way, registered before their thread starts.
        self.releases: dict[int, ReleaseRun] = {}
        self._release_numbers = itertools.count()
        # Deleted jobs whose node folders go once no release task of theirs runs any more.
        self.deleted_job_files: set[str] = set()
        self.booting: set[tuple[str, str]] = set()
        self.stopping = False
        self._thread: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()
        # Task runs reuse pooled threads: starting a thread per task under the model lock was a bottleneck.
        self.task_threads = ThreadPoolExecutor(max_workers=self.cap, thread_name_prefix="batch-task")
        # Output uploads storage acknowledged lately: checked again after a storage crash (storage_recovery).
        self.upload_journal = UploadJournal()
        self.jobs = JobTransitions(model, self)
        self.schedules = ScheduleClock(model, self)
        self.node_ops = NodeOperations(self)
        self.pools = PoolManager(self)
        self.tasks = TaskRunner(self)
        self.runs = TaskRuns(self)

    # ---- lifecycle
    def recover(self) -> None:
        """After a restart: requeue what was running, reset node counters, forget half-finished prep runs."""
        killed = reap_orphans(self.config.nodes_dir)
        if killed:
            _LOG.info("killed %d task processes left by a previous emulator process", killed)
        moment = now_iso()
        with self.model.lock, self.model.store.transaction():
            for job_id, job_tasks in self.model.tasks.items():
                if job_tasks.counts["running"] + job_tasks.counts["preparing"] == 0:
                    continue  # nothing to requeue: its stored tasks need not be decoded
                for task in [t for t in job_tasks.by_id.values() if t["state"] in ("running", "preparing")]:
                    job_tasks.begin_change(task)
                    requeue(task, moment)
                    job_tasks.end_change(task)
                    self.model.save_task(job_id, task)
            for pool_id, pool_nodes in self.model.nodes.items():
                for node in pool_nodes.values():
                    node["runningTasksCount"] = 0
                    node["runningTaskSlotsCount"] = 0
                    prep = internal(node).setdefault("jobPrep", {})
                    for job_id in [j for j, state in prep.items() if state == "running"]:
                        del prep[job_id]
                    if node["state"] == "running":
                        nodes.set_node_state(node, "idle")
                    self.model.save_node(pool_id, node)

    def resync(self) -> None:
        """After a write the database refused: memory is read back from the database, and what the
        database still shows as running but runs no more is requeued (lock held)."""
        with self.model.lock:
            self.model.reload()
            moment = now_iso()
            busy: dict[tuple[str, str], list[int]] = {}
            for run in self.running.values():
                counters = busy.setdefault((run.pool_id, run.node_id), [0, 0])
                counters[0] += 1
                counters[1] += run.slots
            try:
                with self.model.store.transaction():
                    for job_id, job_tasks in self.model.tasks.items():
                        if job_tasks.counts["running"] + job_tasks.counts["preparing"] == 0:
                            continue
                        for task in list(job_tasks.by_id.values()):
                            orphan = (job_id, task["id"]) not in self.running
                            if task["state"] in ("running", "preparing") and orphan:
                                job_tasks.begin_change(task)
                                requeue(task, moment)
                                job_tasks.end_change(task)
                                self.model.save_task(job_id, task)
                    for pool_id, pool_nodes in self.model.nodes.items():
                        for node in pool_nodes.values():
                            count, slots = busy.get((pool_id, node["id"]), [0, 0])
                            node["runningTasksCount"], node["runningTaskSlotsCount"] = count, slots
                            if node["state"] == "running" and count == 0:
                                nodes.set_node_state(node, "idle")
                            self.model.save_node(pool_id, node)
            except StoreError as error:
                _LOG.error("the emulator database still refuses writes: %s", error)
            self.model.notify()

    def start(self, account_url: str) -> None:
        self.account_url = account_url
        self._thread = threading.Thread(target=self._loop, name="batch-scheduler", daemon=True)
        self._thread.start()
        self.model.notify()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop dispatching, end running task processes (they are requeued) and wait for the workers."""
        with self.model.lock:
            self.stopping = True
            for run in self.running.values():
                if run.reason is None:
                    run.reason = "shutdown"
                run.cancel.set()
            for event in [*(r.cancel for r in self.releases.values()), *self.pools.boot_cancels.values()]:
                event.set()
            self.model.changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        for worker in list(self._workers):
            worker.join(timeout)
        with self.model.lock:  # every run ends (requeued) and is recorded before its threads stop
            self.model.changed.wait_for(lambda: not self.running, timeout)
        self.runs.stop(timeout)
        self.task_threads.shutdown(wait=True)

    def status(self) -> dict[str, Any]:
        with self.model.lock:
            return {"maxRunningTasks": self.cap, "runningTasks": len(self.running)}

    # ---- the loop
    def _loop(self) -> None:
        while True:
            with self.model.lock:
                if self.stopping:
                    return
                # Cleared before the pass, so a change made during it triggers another pass.
                self.model.dirty = False
                try:
                    wait = self._reconcile()
                except StoreError as error:
                    _LOG.error("a state change could not be saved, reloading from the database: %s", error)
                    self.resync()
                    wait = 1.0
                except Exception:  # a bug here must not stop scheduling for good
                    _LOG.exception("scheduler pass failed")
                    wait = 1.0
                self.model.changed.wait_for(lambda: self.model.dirty or self.stopping, timeout=wait)

    def _reconcile(self) -> float:
        """One pass over everything; returns how long to sleep at most (timers: autoscale, job wall clock)."""
        wait = 60.0
        for pool in list(self.model.pools.values()):
            wait = min(wait, self.pools.reconcile(pool))
        wait = min(wait, self.jobs.reconcile())
        wait = min(wait, self.schedules.reconcile())
        self.tasks.dispatch()
        return max(wait, 0.01)

    # ---- shared services
    def cancel(self, job_id: str, task_id: str, reason: str) -> bool:
        run = self.running.get((job_id, task_id))
        if run is None:
            return False
        if run.reason is None:
            run.reason = reason
        run.cancel.set()
        return True

    def run_release(self, job: Body) -> None:
        """Run the job release task on every node that ran this job's preparation task (lock held)."""
        release = job.get("jobReleaseTask")
        for pool_id, pool_nodes in self.model.nodes.items():
            for node in pool_nodes.values():
                prep = internal(node).get("jobPrep", {})
                if job["id"] not in prep:
                    continue
                del prep[job["id"]]
                self.model.save_node(pool_id, node)
                if not release or self.stopping:
                    continue
                identity = nodes.identity(self.config, self.account_url, pool_id, node)
                launch = TaskLaunch(
                    "jobrelease",
                    job["id"],
                    str(release.get("id", "jobrelease")),
                    release,
                    job.get("commonEnvironmentSettings") or [],
                )
                number = next(self._release_numbers)
                self.releases[number] = ReleaseRun(pool_id, job["id"], node["id"])
                record_prep_release(self.model, self.account_url, self.releases[number], RELEASE_INFO)
                self.spawn(
                    functools.partial(self._release_run, number, identity, launch), f"release-{job['id']}"
                )

    def _release_run(self, number: int, identity: Any, launch: TaskLaunch) -> None:
        try:
            outcome = run_task(identity, launch, self.storage, self.releases[number].cancel)
            _LOG.info(
                "job release task of %s on %s ended: %s", launch.job_id, identity.node_id, outcome.result
            )
            with self.model.lock:
                record_prep_release(
                    self.model, self.account_url, self.releases[number], RELEASE_INFO, outcome
                )
        finally:
            with self.model.lock:
                del self.releases[number]
                self._remove_deleted_job_files()
                self.model.notify()  # a deleting pool may wait for this run

    def delete_job_files(self, job_id: str) -> None:
        """Remove ``workitems/<job>`` on every node once no release task of the job runs (lock held)."""
        self.deleted_job_files.add(job_id)
        self._remove_deleted_job_files()

    def _remove_deleted_job_files(self) -> None:
        for job_id in list(self.deleted_job_files):
            if any(run.job_id == job_id for run in self.releases.values()):
                continue
            self.deleted_job_files.discard(job_id)
            if job_id not in self.model.jobs:  # a new job with this id would own the folder now
                remove_job_directories(self.config.nodes_dir, job_id)

    def releasing_in(self, pool_id: str) -> bool:
        """True while a job release task runs on a node of the pool (lock held)."""
        return any(run.pool_id == pool_id for run in self.releases.values())

    def cancel_releases_in(self, pool_id: str) -> None:
        for run in self.releases.values():
            if run.pool_id == pool_id:
                run.cancel.set()

    def spawn(self, target: Callable[[], None], name: str) -> None:
        def wrapper() -> None:
            try:
                target()
            finally:
                self._workers.discard(thread)

        thread = threading.Thread(target=wrapper, name=name, daemon=True)
        self._workers.add(thread)
        thread.start()
