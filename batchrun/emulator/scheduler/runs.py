"""Task runs from the start of their process to the record of their end, without a thread per running task.

A dispatched run (its running state committed) is started by one of :data:`LAUNCHERS` threads: the node's
folders, the environment, then the start, through the spawn server
(:mod:`batchrun.emulator.node.spawn_server`, which also creates the task's folders) or, where it cannot be
had, through ``subprocess``. Its process is then watched by the process supervisor's one thread
(:mod:`batchrun.emulator.node.supervisor`), which learns of its end from the spawn server (or reaps it
through its pidfd); the runs whose processes ended at one wake are recorded together (one model-lock
acquisition, one SQLite transaction, which also dispatches the tasks that take the freed slots; their
processes start once that transaction has committed).

Runs that wait on storage (resource files, application packages, output files) or run the job preparation task
first (:meth:`TaskRuns._prepared`) are started and finished on the worker threads, so that neither the
launchers nor the supervisor ever wait on the network; their processes are reaped by the supervisor all the
same.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from batchrun.emulator.model import Body, internal, transition
from batchrun.emulator.node import (
    NodeIdentity,
    PackageBlob,
    TaskLaunch,
    TaskOutcome,
    run_task,
    task_directory,
    unsupported_on_host_failure,
)
from batchrun.emulator.node.failures import failure_info, record_unrunnable
from batchrun.emulator.node.process import ProcessResult, signal_group
from batchrun.emulator.node.runner import (
    PreparedTask,
    StartedTask,
    finish_task,
    launch_failed,
    prepare_task,
    spawn_request,
    spawn_task,
)
from batchrun.emulator.node.spawn_server import SpawnFailure, SpawnRequest
from batchrun.emulator.node.storage_needs import spec_waits_on_storage
from batchrun.emulator.node.supervisor import ProcessSupervisor
from batchrun.emulator.scheduler.task_records import (
    PREPARATION_INFO,
    immediate_failure,
    record_prep_release,
)
from batchrun.emulator.scheduler.tasks import WINDOWS_REASON, RunningTask, TaskStart

if TYPE_CHECKING:
    from batchrun.emulator.scheduler.core import Scheduler

_LOG = logging.getLogger("batchrun.emulator.scheduler")
# Threads that start task processes: a spawn waits for the child's exec (without the GIL), so a few overlap;
# more would only hand the GIL around.
LAUNCHERS = 4
# Runs that end are recorded as they end, with the dispatch that fills their slots, but the scheduler's pass
# (job ends, pools and nodes waiting on tasks) is woken at most this often: each wake is a pass over every
# pool, job and schedule, and 500 short tasks ended in some 200 separate batches.
SCHEDULER_WAKES = 0.02


class TaskRuns:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.supervisor = ProcessSupervisor(flush=self._flush, name="batch-task-processes")
        self._ended: list[tuple[RunningTask, TaskOutcome]] = []  # touched on the supervisor's thread only
        self._wake_pending = False  # ends were recorded since the scheduler was last woken (same thread)
        self._laid_out: set[str] = set()  # roots of the nodes whose folders a task start found there
        self._starts: list[TaskStart] = []  # committed runs for the spawn server, started by the supervisor
        self._starts_lock = threading.Lock()
        self._next_wake = 0.0
        self.launchers = ThreadPoolExecutor(
            max_workers=min(LAUNCHERS, scheduler.cap), thread_name_prefix="batch-launch"
        )

    def begin(self, start: TaskStart) -> None:
        """Start a dispatched run (called once its running state is committed, lock held)."""
        if start.prep_spec is not None or self._waits_on_storage(start):
            self.scheduler.task_threads.submit(self._start_on_worker, start)
        elif self.supervisor.serving():
            # A start is then a message to the spawn server, made on the supervisor's thread after this
            # transaction and outside the model lock, and sent with the other starts of the same batch. There
            # the batch's flush starts them (the runs that end free the slots they take); from elsewhere a
            # call does.
            with self._starts_lock:
                first = not self._starts
                self._starts.append(start)
            if first and not self.supervisor.on_thread():
                self.supervisor.call_soon(self._start_queued)
        else:
            self.launchers.submit(self._start_here, start)

    def stop(self, timeout: float) -> None:
        self.launchers.shutdown(wait=True)
        self.supervisor.stop(timeout)

    # ---- the supervisor's thread, or a launcher thread
    def _start_queued(self) -> None:
        with self._starts_lock:
            starts, self._starts = self._starts, []
        for start in starts:
            self._start_here(start)

    def _start_here(self, start: TaskStart) -> None:
        run = start.run
        try:
            prepared = self._prepare(start)
            if isinstance(prepared, TaskOutcome):
                self._ended_elsewhere(run, prepared)
                return
            self._launch(run, prepared, self._ended_elsewhere)
        except Exception as error:  # never leave a task stuck in running because of a bug
            self._ended_elsewhere(run, self._bug(run, error))

    def _ended_elsewhere(self, run: RunningTask, outcome: TaskOutcome) -> None:
        """A run that ended without a process, recorded with the supervisor's next batch."""
        self.supervisor.call_soon(lambda: self._ended.append((run, outcome)))

    # ---- any thread
    def _launch(
        self, run: RunningTask, task: PreparedTask, ended: Callable[[RunningTask, TaskOutcome], None]
    ) -> None:
        """Start the prepared run through the spawn server, or through ``subprocess`` without one; ``ended``
        records a run that could not start from this thread."""
        request = None
        if self.supervisor.spawns():
            # None for what subprocess refuses (a NUL byte, an '=' in a name): it says so below, as ever.
            request = _request_or_none(task)
        if request is not None:

            def failed(failure: SpawnFailure) -> None:
                self._ended.append((run, launch_failed(task, failure)))

            if self.supervisor.spawn(request, run.cancel, task.time_limit, self._exited(run, task), failed):
                return
        started = spawn_task(task)
        if isinstance(started, TaskOutcome):
            ended(run, started)
        else:
            self._watch(run, started)

    def _exited(self, run: RunningTask, task: PreparedTask) -> Callable[[ProcessResult], None]:
        """What the supervisor's thread does once the run's process has ended."""

        def exited(result: ProcessResult) -> None:
            if task.uploads:
                self.scheduler.task_threads.submit(self._finish_on_worker, run, task, result)
            else:
                self._ended.append((run, finish_task(task, result)))

        return exited

    def _watch(self, run: RunningTask, started: StartedTask) -> None:
        """Hand the run's process to the supervisor; ``exited`` runs on the supervisor's thread."""
        exited = self._exited(run, started.task)
        try:
            self.supervisor.watch(started.process, run.cancel, started.task.time_limit, exited)
        except Exception as error:
            _LOG.exception("task %s/%s: its process cannot be watched; it is ended", run.job_id, run.task_id)
            signal_group(started.process.pid, signal.SIGKILL)
            started.process.wait()
            self._ended_elsewhere(run, self._bug(run, error))

    # ---- the supervisor's thread
    def _flush(self) -> float | None:
        """Record the runs that ended; returns how soon the scheduler's wake is due, if one waits."""
        now = time.monotonic()
        try:
            if self._ended:
                ended, self._ended = self._ended, []
                self.scheduler.tasks.complete_together(ended, wake=False)
                self._wake_pending = True
        finally:  # whatever happened to the batch, the runs whose start was committed start now
            if self._starts:  # (outside the model lock)
                self._start_queued()
        if not self._wake_pending:
            return None
        if now < self._next_wake:
            return self._next_wake - now
        self._wake_pending = False
        self._next_wake = now + SCHEDULER_WAKES
        self.scheduler.model.notify()
        return None

    # ---- worker threads
    def _start_on_worker(self, start: TaskStart) -> None:
        run = start.run
        try:
            packages, prep = start.packages, start.prep_spec
            # Unusable packages (a message) fail the run in _start, without the preparation task.
            ready = prep is None or isinstance(packages, str)
            if not ready and not self._prepared(run, start.identity, prep or {}, start.environment, packages):
                return
            prepared = self._prepare(start)
            if isinstance(prepared, TaskOutcome):
                self.scheduler.tasks.complete_alone(run, prepared)
                return
            self._launch(run, prepared, self.scheduler.tasks.complete_alone)
        except Exception as error:  # never leave a task stuck in running because of a bug
            self.scheduler.tasks.complete_alone(run, self._bug(run, error))

    def _prepared(
        self,
        run: RunningTask,
        identity: NodeIdentity,
        prep_spec: Body,
        environment: list[Body],
        packages: list[PackageBlob] | str,
    ) -> bool:
        """Run the job preparation task on the node first; False when the task must not run there."""
        launch = TaskLaunch(
            "jobpreparation",
            run.job_id,
            str(prep_spec.get("id", "jobpreparation")),
            prep_spec,
            environment,
            [] if isinstance(packages, str) else packages,
        )
        model, account_url = self.scheduler.model, self.scheduler.account_url
        with model.lock:
            record_prep_release(model, account_url, run, PREPARATION_INFO)
        outcome = run_task(identity, launch, self.scheduler.storage, run.cancel)
        with model.lock:
            record_prep_release(model, account_url, run, PREPARATION_INFO, outcome)
            node = model.nodes.get(run.pool_id, {}).get(run.node_id)
            ok = outcome.result == "success" or not prep_spec.get("waitForSuccess", True)
            if node is not None:
                internal(node).setdefault("jobPrep", {})[run.job_id] = "succeeded" if ok else "failed"
                model.save_node(run.pool_id, node)
            job_tasks = model.tasks.get(run.job_id)
            task = job_tasks.by_id.get(run.task_id) if job_tasks else None
            if ok and run.reason is None and task is not None and task["state"] == "preparing":
                job_tasks.begin_change(task)  # type: ignore[union-attr]
                transition(task, "running")
                job_tasks.end_change(task)  # type: ignore[union-attr]
                model.save_task(run.job_id, task)
                return True
            if ok and run.reason is None:
                return True
            # Batch does not run this job's tasks on a node whose preparation task failed: back to the queue.
            if run.reason is None:
                run.reason = "prepfailed"
            self.scheduler.tasks.complete_locked(run, outcome)
            return False

    def _finish_on_worker(self, run: RunningTask, task: PreparedTask, result: ProcessResult) -> None:
        self.scheduler.tasks.complete_alone(run, finish_task(task, result))

    # ---- either
    def _prepare(self, start: TaskStart) -> PreparedTask | TaskOutcome:
        run = start.run
        if start.windows:
            record_unrunnable(task_directory(start.identity, run.job_id, run.task_id), WINDOWS_REASON)
            return immediate_failure(unsupported_on_host_failure(WINDOWS_REASON))
        if isinstance(start.packages, str):
            return immediate_failure(
                failure_info(
                    "usererror",
                    "ApplicationPackageError",
                    f"An application package could not be used: {start.packages}",
                )
            )
        launch = self.scheduler.tasks.launch_of(start)
        journal = self.scheduler.upload_journal
        # The spawn server creates the task's folders (when nothing needs them before the start).
        leave = self.supervisor.spawns()
        # A node's folders are made when it boots (again after a reimage): looked for at its first task here.
        root = str(start.identity.root)
        laid_out = root in self._laid_out
        prepared = prepare_task(
            start.identity, launch, self.scheduler.storage, run.cancel, journal, leave, laid_out
        )
        if not laid_out and not isinstance(prepared, TaskOutcome):
            self._laid_out.add(root)
        return prepared

    def _bug(self, run: RunningTask, error: Exception) -> TaskOutcome:
        _LOG.error("task %s/%s failed in the emulator", run.job_id, run.task_id, exc_info=error)
        return immediate_failure(failure_info("servererror", "NodeRuntimeError", str(error)))

    @staticmethod
    def _waits_on_storage(start: TaskStart) -> bool:
        if start.windows or isinstance(start.packages, str):
            return False
        return bool(start.packages) or spec_waits_on_storage(start.spec)


def _request_or_none(task: PreparedTask) -> SpawnRequest | None:
    try:
        return spawn_request(task)
    except ValueError:
        return None
