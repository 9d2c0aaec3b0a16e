"""Task dispatch and completion: choosing nodes and slots, and recording how a run ended (retries, requeues,
exit conditions, job actions). The runs themselves, the job preparation task included, are started and watched
by :mod:`batchrun.emulator.scheduler.runs`.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import msgspec
from msgspec import field
from msgspec.structs import replace

from batchrun.emulator.auth import task_token
from batchrun.emulator.model import Body, find_by_id, internal, job_pool_id, transition
from batchrun.emulator.node import (
    NodeIdentity,
    PackageBlob,
    TaskLaunch,
    TaskOutcome,
    remove_task_directories,
)
from batchrun.emulator.node.failures import ended_failure
from batchrun.emulator.node.model import CancelFlag
from batchrun.emulator.packages import blobs_of_snapshot, resolve_packages
from batchrun.emulator.scheduler import nodes
from batchrun.emulator.scheduler.outcomes import (
    ExitDecision,
    dependencies_ready,
    exit_decision,
    should_retry,
)
from batchrun.emulator.scheduler.task_records import (
    requeue,
    task_slots,
)
from batchrun.emulator.store import StoreError
from batchrun.emulator.timefmt import iso, now_iso

if TYPE_CHECKING:
    from batchrun.emulator.scheduler.core import Scheduler

_LOG = logging.getLogger("batchrun.emulator.scheduler")
LOCAL_IP = "127.0.0.1"  # every simulated node lives on this machine
WINDOWS_REASON = (
    "Windows pools cannot run on the local target (the task would need cmd.exe); use a Linux "
    "image (nodeAgentSKUId 'batch.node.ubuntu ...') or run against Azure Batch"
)


class RunningTask(msgspec.Struct):
    job_id: str
    task_id: str
    pool_id: str
    node_id: str
    slots: int
    cancel: CancelFlag = field(default_factory=CancelFlag)
    reason: str | None = None  # why it was cancelled: requeue | terminate | delete | shutdown | prepfailed
    # Set when storage lost an output this run had uploaded and it could not be uploaded again.
    lost_output: Body | None = None


class TaskStart(msgspec.Struct, frozen=True):
    """What starting one run needs, taken from the model at dispatch (the lock is not held at the start)."""

    run: RunningTask
    identity: NodeIdentity
    spec: Body
    environment: list[Body]
    packages: list[PackageBlob] | str  # a message when the packages cannot be used
    prep_spec: Body | None  # the job preparation task to run on the node first
    windows: bool
    job_prepared: bool = False  # the job's preparation task has run (or runs first) on the node


class TaskRunner:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.model = scheduler.model
        self.config = scheduler.config
        self._identities: dict[tuple[str, str, bool], NodeIdentity] = {}
        self._node_saves: dict[tuple[str, str], Body] | None = None  # set while complete_together runs

    def dispatch(self) -> None:
        budget = self.scheduler.cap - len(self.scheduler.running)
        if budget <= 0 or self.scheduler.stopping:
            return
        # Jobs without an active task are passed over before the sort: finished jobs stay active until they
        # are terminated, and this pass runs for every batch of ended runs.
        tasks = self.model.tasks
        active_jobs = [
            job
            for job in self.model.jobs.values()
            if job["state"] == "active"
            and (job_tasks := tasks.get(job["id"])) is not None
            and job_tasks.pending
        ]
        if len(active_jobs) > 1:
            active_jobs.sort(key=lambda job: (-int(job.get("priority", 0)), job["creationTime"]))
        with self.model.store.transaction():  # one commit for every task this pass starts
            for job in active_jobs:
                if budget <= 0:
                    return
                pool = find_by_id(self.model.pools, job_pool_id(job))
                if pool is None or pool["state"] != "active":
                    continue
                budget -= self._dispatch_job(job, pool, budget)

    def _dispatch_job(self, job: Body, pool: Body, budget: int) -> int:
        job_tasks = self.model.tasks[job["id"]]
        if not job_tasks.pending:
            return 0
        slots_per_node = int(pool.get("taskSlotsPerNode", 1))
        candidates = [
            node
            for node in self.model.nodes[pool["id"]].values()
            if node["state"] in nodes.SCHEDULABLE
            and node["schedulingState"] == "enabled"
            and internal(node).get("jobPrep", {}).get(job["id"]) not in ("running", "failed")
            and not internal(node).get("pendingOperation")
        ]
        free = {node["id"]: slots_per_node - int(node["runningTaskSlotsCount"]) for node in candidates}
        if not free or max(free.values()) <= 0:
            return 0
        limit = int(job.get("maxParallelTasks", -1))
        running = job_tasks.counts["running"] + job_tasks.counts["preparing"]
        pack = pool.get("taskSchedulingPolicy", {}).get("nodeFillType") == "pack"
        chosen: list[tuple[Body, Body]] = []
        by_id = {node["id"]: node for node in candidates}
        needs_prep = bool(job.get("jobPreparationTask"))
        for task_id in job_tasks.pending:
            if len(chosen) >= budget or (limit != -1 and running + len(chosen) >= limit):
                break
            if not free or max(free.values()) <= 0:
                break
            task = job_tasks.by_id.peek(task_id)  # read only: a waiting task stays its stored text
            if task is None or not dependencies_ready(job_tasks, task):
                continue
            need = task_slots(job, task, slots_per_node)
            fitting = [node_id for node_id, slots in free.items() if slots >= need]
            if not fitting:
                continue
            if pack:
                node_id = min(fitting, key=lambda n: (free[n], n))
            else:
                node_id = max(fitting, key=lambda n: (free[n], n))
            free[node_id] -= need
            if (
                needs_prep
                and node_id in free
                and by_id[node_id]["_x"].get("jobPrep", {}).get(job["id"]) is None
            ):
                free.pop(node_id)  # the job preparation task runs there first; no other task of this job yet
            chosen.append((job_tasks.by_id.keep(task_id, task), by_id[node_id]))  # a task that starts is live
        for task, node in chosen:
            self._launch(job, pool, task, node)
        return len(chosen)

    def _launch(self, job: Body, pool: Body, task: Body, node: Body) -> None:
        job_tasks = self.model.tasks[job["id"]]
        slots = task_slots(job, task, int(pool.get("taskSlotsPerNode", 1)))
        prep_state = internal(node).setdefault("jobPrep", {}).get(job["id"])
        run_prep = bool(job.get("jobPreparationTask")) and prep_state is None
        moment = now_iso()
        job_tasks.begin_change(task)
        transition(task, "preparing" if run_prep else "running", moment)
        job_tasks.end_change(task)
        info = task.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
        info["startTime"] = moment
        for name in ("endTime", "exitCode", "failureInfo", "result"):
            info.pop(name, None)
        node_url = f"{self.scheduler.account_url}/pools/{pool['id']}/nodes/{node['id']}"
        task_dir = f"workitems/{job['id']}/job-1/{task['id']}"
        task["nodeInfo"] = {
            "affinityId": node["affinityId"],
            "nodeUrl": node_url,
            "poolId": pool["id"],
            "nodeId": node["id"],
            "taskRootDirectory": task_dir,
            "taskRootDirectoryUrl": f"{node_url}/files/{task_dir}",
        }
        node["runningTasksCount"] += 1
        node["runningTaskSlotsCount"] += slots
        node["totalTasksRun"] += 1
        if run_prep:
            internal(node)["jobPrep"][job["id"]] = "running"
        if node["state"] == "idle":
            nodes.set_node_state(node, "running")
        run = RunningTask(job["id"], task["id"], pool["id"], node["id"], slots)
        identity = self._identity(pool["id"], node)
        prep_spec = job.get("jobPreparationTask") if run_prep else None
        environment = job.get("commonEnvironmentSettings") or []
        packages: list[PackageBlob] | str
        installed = internal(node).get("packages")
        pool_packages = (
            blobs_of_snapshot(installed)
            if installed is not None
            else resolve_packages(self.model, pool.get("applicationPackageReferences") or [])
        )
        task_packages = resolve_packages(self.model, task.get("applicationPackageReferences") or [])
        if isinstance(pool_packages, str) or isinstance(task_packages, str):
            packages = pool_packages if isinstance(pool_packages, str) else str(task_packages)
        else:
            packages = pool_packages + task_packages
        spec = dict(task)
        spec.pop("_x", None)
        prepared = job["id"] in internal(node).get("jobPrep", {})
        start = TaskStart(
            run, identity, spec, environment, packages, prep_spec, nodes.is_windows(pool), prepared
        )
        key = (job["id"], task["id"])
        # In the transaction of the dispatch pass: the process starts once the task's running state is
        # committed, with the rest of the pass.
        self.model.save_task(job["id"], task)
        self._save_node(pool["id"], node)
        self.scheduler.running[key] = run
        self.model.store.after_commit(lambda: self.scheduler.runs.begin(start), lambda: self._unrun(key))

    def _unrun(self, key: tuple[str, str]) -> None:
        """The transaction that started a run was rolled back: it never started."""
        self.scheduler.running.pop(key, None)

    def _save_node(self, pool_id: str, node: Body) -> None:
        """Save a node whose counters a run's start or end changed: once per batch in
        :meth:`complete_together` (lock held, in a transaction)."""
        if self._node_saves is None:
            self.model.save_node(pool_id, node)
        else:
            self._node_saves[(pool_id, node["id"])] = node

    def _identity(self, pool_id: str, node: Body) -> NodeIdentity:
        """The node's identity, made once per node (it depends only on the pool, the node and the config)."""
        key = (pool_id, node["id"], bool(node.get("isDedicated", True)))
        found = self._identities.get(key)
        if found is None:
            found = nodes.identity(self.config, self.scheduler.account_url, pool_id, node)
            self._identities[key] = found
        return found

    def launch_of(self, start: TaskStart) -> TaskLaunch:
        run = start.run
        return TaskLaunch(
            "task",
            run.job_id,
            run.task_id,
            start.spec,
            start.environment,
            start.packages if isinstance(start.packages, list) else [],
            [LOCAL_IP],
            task_token(self.scheduler.config.account_key_bytes, run.job_id, start.spec),
            start.job_prepared,
        )

    def complete_alone(self, run: RunningTask, outcome: TaskOutcome) -> None:
        """Record the end of one run, from a thread of its own (takes the lock)."""
        with self.model.lock:
            try:
                self.complete_locked(run, outcome)
            except StoreError as error:
                _LOG.error("the end of task %s/%s could not be saved: %s", run.job_id, run.task_id, error)
                self.scheduler.running.pop((run.job_id, run.task_id), None)
                self.scheduler.resync()  # the task runs again, as after a restart

    def complete_together(self, ended: list[tuple[RunningTask, TaskOutcome]], wake: bool = True) -> None:
        """Record the end of runs that ended together: one lock acquisition, one transaction, one dispatch.

        ``wake``: wake the scheduler for its pass (job ends, pools waiting on tasks ...); a caller that passes
        False wakes it itself, soon."""
        with self.model.lock:
            try:
                with self.model.store.transaction():
                    self._node_saves = {}  # each node these ends and starts change is saved once, below
                    try:
                        for run, outcome in ended:
                            self.record_end(run, outcome)
                        self.dispatch()
                    finally:
                        changed, self._node_saves = self._node_saves, None
                    for (pool_id, node_id), node in changed.items():
                        if self.model.nodes.get(pool_id, {}).get(node_id) is node:  # (not removed since)
                            self.model.save_node(pool_id, node)
            except StoreError as error:
                _LOG.error("the end of %d task runs could not be saved: %s", len(ended), error)
                for run, _ in ended:
                    self.scheduler.running.pop((run.job_id, run.task_id), None)
                self.scheduler.resync()  # the tasks run again, as after a restart
            if wake:
                self.model.notify()

    def complete_locked(self, run: RunningTask, outcome: TaskOutcome) -> None:
        """Record how a task run ended and fill the freed slots (lock held)."""
        with self.model.store.transaction():
            self.record_end(run, outcome)
        # Fill the freed slot from this thread right away instead of waiting for the scheduler thread's pass.
        self.dispatch()
        self.model.notify()

    def record_end(self, run: RunningTask, outcome: TaskOutcome) -> None:
        """Record how a task run ended (lock held; in the caller's transaction)."""
        self.scheduler.running.pop((run.job_id, run.task_id), None)
        if run.lost_output is not None and outcome.result == "success":
            lost = run.lost_output
            outcome = replace(outcome, failure_info=lost, result="failure", failure_stage="fileupload")
        node = self.model.nodes.get(run.pool_id, {}).get(run.node_id)
        job_tasks = self.model.tasks.get(run.job_id)
        task = job_tasks.by_id.get(run.task_id) if job_tasks else None
        if node is not None:
            node["runningTasksCount"] = max(0, node["runningTasksCount"] - 1)
            node["runningTaskSlotsCount"] = max(0, node["runningTaskSlotsCount"] - run.slots)
            if outcome.result == "success" and run.reason is None:
                node["totalTasksSucceeded"] += 1
            if node["state"] == "running" and node["runningTasksCount"] == 0:
                nodes.set_node_state(node, "idle")
            self._save_node(run.pool_id, node)
        if task is not None and job_tasks is not None and run.reason != "delete":
            job_tasks.begin_change(task)
            self._record_outcome(run, task, outcome)
            job_tasks.end_change(task)
            decision = None
            if task["state"] == "completed":
                decision = self._record_exit_decision(task, outcome)
            self.model.save_task(run.job_id, task)  # once, with its dependency action
            if decision is not None:
                self.after_completion(run.job_id, task, decision)
        if run.reason == "delete":
            # The task (or its job) was deleted while it ran; its process has ended now.
            remove_task_directories(self.config.nodes_dir, run.job_id, run.task_id)

    def _record_outcome(self, run: RunningTask, task: Body, outcome: TaskOutcome) -> None:
        info = task.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
        moment = now_iso()
        if run.reason in ("requeue", "shutdown", "prepfailed"):
            if run.reason == "prepfailed":
                for name in ("startTime", "endTime", "exitCode", "failureInfo", "result"):
                    info.pop(name, None)
                transition(task, "active", moment)
            else:
                requeue(task, moment)
            return
        failure = outcome.failure_info
        if run.reason == "terminate" and failure is None:
            failure = ended_failure()
        if run.reason is None and should_retry(task, failure, outcome.failure_stage):
            info["retryCount"] = int(info.get("retryCount", 0)) + 1
            info["lastRetryTime"] = moment
            for name in ("endTime", "exitCode", "failureInfo", "result"):
                info.pop(name, None)
            transition(task, "active", moment)
            return
        if outcome.start_time is not None:
            info["startTime"] = iso(outcome.start_time)
        info["endTime"] = iso(outcome.end_time)
        if outcome.exit_code is not None:
            info["exitCode"] = outcome.exit_code
        else:
            info.pop("exitCode", None)
        if failure is not None:
            info["failureInfo"] = failure
        else:
            info.pop("failureInfo", None)
        info["result"] = "success" if failure is None else "failure"
        transition(task, "completed", moment)

    def _record_exit_decision(self, task: Body, outcome: TaskOutcome) -> ExitDecision:
        """What the task's exit conditions say now that it has completed; keeps its dependency action."""
        succeeded = task["executionInfo"]["result"] == "success"
        decision = exit_decision(
            task, succeeded, task["executionInfo"].get("exitCode"), outcome.failure_stage
        )
        internal(task)["dependencyAction"] = decision.dependency_action
        return decision

    def after_completion(self, job_id: str, task: Body, decision: ExitDecision) -> None:
        succeeded = task["executionInfo"]["result"] == "success"
        job = self.model.jobs.get(job_id)
        manager = job is not None and internal(task).get("jobManager")
        if manager and job is not None and job.get("jobManagerTask", {}).get("killJobOnCompletion", True):
            self.scheduler.jobs.terminate(job, "JMComplete")  # Batch's reason for this end
            return
        if job is None or job.get("onTaskFailure") != "performexitoptionsjobaction" or succeeded:
            return
        if decision.job_action == "terminate":
            self.scheduler.jobs.terminate(job, "TaskFailed")
        elif decision.job_action == "disable":
            self.scheduler.jobs.disable(job, "requeue")
