"""The scheduler: one thread that reconciles pools, nodes and jobs, and worker threads that run tasks.

Everything that changes state is woken through ``model.changed`` (a condition variable): API writes and
finishing workers call ``model.notify()``, so dispatch never polls. All model access happens under
``model.lock``; task processes run outside it.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from batchrun.emulator.config import EmulatorConfig
from batchrun.emulator.model import Body, Model, internal, transition
from batchrun.emulator.node import (
    PackageBlob,
    StorageAccess,
    TaskLaunch,
    TaskOutcome,
    prepare_node,
    reap_orphans,
    run_task,
    unsupported_on_host_failure,
)
from batchrun.emulator.node.failures import failure_info
from batchrun.emulator.packages import PACKAGE_CONTAINER, UnresolvedPackage, package_blob_name, resolve
from batchrun.emulator.scheduler import autoscale, nodes
from batchrun.emulator.scheduler.jobs import JobTransitions
from batchrun.emulator.scheduler.outcomes import dependencies_ready, exit_decision, should_retry
from batchrun.emulator.store import Table
from batchrun.emulator.timefmt import iso, now, now_iso, parse_iso

_LOG = logging.getLogger("batchrun.emulator.scheduler")
WINDOWS_REASON = (
    "Windows pools cannot run on the local target (the task would need cmd.exe); use a Linux "
    "image (nodeAgentSKUId 'batch.node.ubuntu ...') or run against Azure Batch"
)


@dataclass
class RunningTask:
    job_id: str
    task_id: str
    pool_id: str
    node_id: str
    slots: int
    cancel: threading.Event = field(default_factory=threading.Event)
    reason: str | None = None  # why it was cancelled: requeue | terminate | delete | shutdown


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
        self._helpers: dict[int, threading.Event] = {}  # start / prep / release runs, by thread id
        self._booting: set[tuple[str, str]] = set()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._workers: set[threading.Thread] = set()
        self.jobs = JobTransitions(model, self)

    # ---- lifecycle
    def recover(self) -> None:
        """After a restart: requeue what was running, reset node counters, forget half-finished prep runs."""
        killed = reap_orphans(self.config.nodes_dir)
        if killed:
            _LOG.info("killed %d task processes left by a previous emulator process", killed)
        moment = now_iso()
        with self.model.lock, self.model.store.transaction():
            for job_id, job_tasks in self.model.tasks.items():
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

    def start(self, account_url: str) -> None:
        self.account_url = account_url
        self._thread = threading.Thread(target=self._loop, name="batch-scheduler", daemon=True)
        self._thread.start()
        self.model.notify()

    def stop(self, timeout: float = 20.0) -> None:
        """Stop dispatching, end running task processes (they are requeued) and wait for the workers."""
        with self.model.lock:
            self._stopping = True
            for run in self.running.values():
                if run.reason is None:
                    run.reason = "shutdown"
                run.cancel.set()
            for event in self._helpers.values():
                event.set()
            self.model.changed.notify_all()
        if self._thread is not None:
            self._thread.join(timeout)
        for worker in list(self._workers):
            worker.join(timeout)

    def status(self) -> dict[str, Any]:
        with self.model.lock:
            return {"maxRunningTasks": self.cap, "runningTasks": len(self.running)}

    # ---- the loop
    def _loop(self) -> None:
        while True:
            with self.model.lock:
                if self._stopping:
                    return
                try:
                    wait = self._reconcile()
                except Exception:  # a bug here must not stop scheduling for good
                    _LOG.exception("scheduler pass failed")
                    wait = 1.0
                if self._stopping:
                    return
                self.model.dirty = False
                self.model.changed.wait_for(lambda: self.model.dirty or self._stopping, timeout=wait)

    def _reconcile(self) -> float:
        """One pass over everything; returns how long to sleep at most (timers: autoscale, job wall clock)."""
        wait = 60.0
        for pool in list(self.model.pools.values()):
            wait = min(wait, self._reconcile_pool(pool))
        wait = min(wait, self.jobs.reconcile())
        self._dispatch()
        return max(wait, 0.01)

    # ---- pools and nodes
    def _reconcile_pool(self, pool: Body) -> float:
        pool_id = pool["id"]
        pool_nodes = self.model.nodes.setdefault(pool_id, {})
        if pool["state"] == "deleting":
            for node in list(pool_nodes.values()):
                self._retire_node(pool, node, "requeue")
            if not pool_nodes and not any(key[0] == pool_id for key in self._booting):
                del self.model.pools[pool_id]
                del self.model.nodes[pool_id]
                with self.model.store.transaction():
                    self.model.store.delete(Table.POOLS, "", pool_id)
                    self.model.store.delete_children(Table.NODES, pool_id)
            return 60.0
        wait = 60.0
        if pool.get("enableAutoScale") and internal(pool).get("nextAutoScale"):
            due = parse_iso(internal(pool)["nextAutoScale"])
            remaining = (due - now()).total_seconds()
            if remaining <= 0:
                self._evaluate_autoscale(pool)
            else:
                wait = remaining
        for node in list(pool_nodes.values()):
            if node["state"] in nodes.BOOTING and (pool_id, node["id"]) not in self._booting:
                self._boot(pool, node)
            if (
                node["state"] == "leavingpool"
                and node["runningTasksCount"] == 0
                and (pool_id, node["id"]) not in self._booting
            ):
                del pool_nodes[node["id"]]
                self.model.store.delete(Table.NODES, pool_id, node["id"])
        if pool["allocationState"] == "stopping":
            live = [n for n in pool_nodes.values() if n["state"] != "leavingpool"]
            pool["targetDedicatedNodes"] = sum(1 for n in live if n.get("isDedicated"))
            pool["targetLowPriorityNodes"] = sum(1 for n in live if not n.get("isDedicated"))
            self._set_allocation(pool, "steady")
        elif pool["allocationState"] == "resizing":
            self._resize(pool, pool_nodes)
        return wait

    def _set_allocation(self, pool: Body, state: str) -> None:
        pool["allocationState"] = state
        pool["allocationStateTransitionTime"] = now_iso()
        self.model.save_pool(pool)

    def _resize(self, pool: Body, pool_nodes: dict[str, Body]) -> None:
        option = str(internal(pool).get("deallocation", "requeue"))
        for dedicated, target_name in ((True, "targetDedicatedNodes"), (False, "targetLowPriorityNodes")):
            live = [
                n
                for n in pool_nodes.values()
                if n["state"] != "leavingpool" and bool(n.get("isDedicated")) == dedicated
            ]
            target = int(pool.get(target_name, 0))
            for _ in range(target - len(live)):
                node = nodes.new_node(pool, dedicated)
                pool_nodes[node["id"]] = node
                self.model.save_node(pool["id"], node)
                self._boot(pool, node)
            if len(live) > target:
                ordered = sorted(live, key=lambda n: (nodes.REMOVAL_ORDER.get(n["state"], 9), n["id"]))
                for node in ordered[: len(live) - target]:
                    self._retire_node(pool, node, option)
        self.model.save_pool(pool)
        settled = all(n["state"] not in (*nodes.BOOTING, "leavingpool") for n in pool_nodes.values())
        if settled:
            self._set_allocation(pool, "steady")

    def _retire_node(self, pool: Body, node: Body, option: str) -> None:
        if node["state"] != "leavingpool":
            nodes.set_node_state(node, "leavingpool")
            node["schedulingState"] = "disabled"
            self.model.save_node(pool["id"], node)
        if option in ("requeue", "terminate"):
            for run in self.running.values():
                if run.pool_id == pool["id"] and run.node_id == node["id"] and run.reason is None:
                    run.reason = option
                    run.cancel.set()
        if node["runningTasksCount"] == 0 and (pool["id"], node["id"]) not in self._booting:
            self.model.nodes[pool["id"]].pop(node["id"], None)
            self.model.store.delete(Table.NODES, pool["id"], node["id"])

    def _evaluate_autoscale(self, pool: Body) -> None:
        extra = internal(pool)
        formula = str(pool.get("autoScaleFormula", ""))
        try:
            results = autoscale.evaluate(formula, autoscale.task_metrics(self.model, pool["id"]))
            dedicated, low, option = autoscale.targets(
                results, pool.get("targetDedicatedNodes", 0), pool.get("targetLowPriorityNodes", 0)
            )
            pool["autoScaleRun"] = {"timestamp": now_iso(), "results": autoscale.results_text(results)}
            if (dedicated, low) != (pool.get("targetDedicatedNodes"), pool.get("targetLowPriorityNodes")):
                pool["targetDedicatedNodes"], pool["targetLowPriorityNodes"] = dedicated, low
                extra["deallocation"] = option
                if pool["allocationState"] == "steady":
                    pool["allocationState"] = "resizing"
                    pool["allocationStateTransitionTime"] = now_iso()
        except autoscale.FormulaError as error:
            pool["autoScaleRun"] = {
                "timestamp": now_iso(),
                "error": {"code": "InvalidAutoScaleFormula", "message": str(error), "values": []},
            }
        extra["nextAutoScale"] = autoscale.next_evaluation(pool)
        self.model.save_pool(pool)

    def _boot(self, pool: Body, node: Body) -> None:
        key = (pool["id"], node["id"])
        self._booting.add(key)
        self._spawn(lambda: self._boot_worker(pool["id"], node["id"]), f"boot-{node['id']}")

    def _boot_worker(self, pool_id: str, node_id: str) -> None:
        cancel = threading.Event()
        self._helpers[threading.get_ident()] = cancel
        try:
            with self.model.lock:
                pool = self.model.pools.get(pool_id)
                node = self.model.nodes.get(pool_id, {}).get(node_id)
                if pool is None or node is None or self._stopping:
                    return
                identity = nodes.identity(self.config, self.account_url, pool_id, node)
            prepare_node(identity)
            with self.model.lock:
                if node["state"] == "leavingpool":
                    return
                nodes.set_node_state(node, "starting")
                start_task = pool.get("startTask")
                wait = bool(start_task.get("waitForSuccess", True)) if start_task else False
                if start_task:
                    node["startTask"] = start_task
                    node["startTaskInfo"] = {"state": "running", "startTime": now_iso(), "retryCount": 0}
                nodes.set_node_state(node, "waitingforstarttask" if wait else "idle")
                self.model.save_node(pool_id, node)
                self.model.notify()
                packages = self._pool_packages(pool) if start_task else []
            if not start_task:
                return
            attempts = 0
            while True:
                if nodes.is_windows(pool):
                    outcome = immediate_failure(unsupported_on_host_failure(WINDOWS_REASON))
                elif isinstance(packages, str):
                    outcome = immediate_failure(
                        failure_info("usererror", "ApplicationPackageError", packages)
                    )
                else:
                    launch = TaskLaunch("starttask", "", "", start_task, packages=packages)
                    outcome = run_task(identity, launch, self.storage, cancel)
                limit = int(start_task.get("maxTaskRetryCount", 0))
                if outcome.result == "success" or cancel.is_set() or (limit != -1 and attempts >= limit):
                    break
                attempts += 1
            with self.model.lock:
                if cancel.is_set() and self._stopping:
                    return  # interrupted by shutdown: the node boots again on restart
                info: Body = {
                    "state": "completed",
                    "startTime": iso(outcome.start_time or outcome.end_time),
                    "endTime": iso(outcome.end_time),
                    "retryCount": attempts,
                    "result": outcome.result,
                }
                if outcome.exit_code is not None:
                    info["exitCode"] = outcome.exit_code
                if outcome.failure_info:
                    info["failureInfo"] = outcome.failure_info
                if attempts:
                    info["lastRetryTime"] = info["startTime"]
                node["startTaskInfo"] = info
                if node["state"] != "leavingpool":
                    if outcome.result == "failure" and wait:
                        nodes.set_node_state(node, "starttaskfailed")
                    elif node["state"] == "waitingforstarttask":
                        nodes.set_node_state(node, "idle")
                self.model.save_node(pool_id, node)
        except OSError as error:
            _LOG.error("node %s of pool %s could not be prepared: %s", node_id, pool_id, error)
            with self.model.lock:
                node = self.model.nodes.get(pool_id, {}).get(node_id)
                if node is not None:
                    nodes.set_node_state(node, "unusable")
                    node["errors"] = [{"code": "NodePreparationFailed", "message": str(error)}]
                    self.model.save_node(pool_id, node)
        finally:
            with self.model.lock:
                self._booting.discard((pool_id, node_id))
                self._helpers.pop(threading.get_ident(), None)
                self.model.notify()

    def _pool_packages(self, pool: Body) -> list[PackageBlob] | str:
        """Resolved pool-level packages, or the reason they cannot be resolved."""
        return self._resolve_packages(pool.get("applicationPackageReferences") or [])

    def _resolve_packages(self, references: list[Body]) -> list[PackageBlob] | str:
        blobs: list[PackageBlob] = []
        for reference in references:
            try:
                name, version, _ = resolve(self.model, reference)
            except UnresolvedPackage as error:
                return str(error)
            blobs.append(
                PackageBlob(
                    name,
                    version,
                    PACKAGE_CONTAINER,
                    package_blob_name(name, version),
                    referenced_without_version=not reference.get("version"),
                )
            )
        return blobs

    # ---- dispatch
    def _dispatch(self) -> None:
        budget = self.cap - len(self.running)
        if budget <= 0 or self._stopping:
            return
        active_jobs = [job for job in self.model.jobs.values() if job["state"] == "active"]
        active_jobs.sort(key=lambda job: (-int(job.get("priority", 0)), job["creationTime"]))
        for job in active_jobs:
            if budget <= 0:
                return
            pool = self.model.pools.get(job.get("poolInfo", {}).get("poolId", ""))
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
            task = job_tasks.by_id[task_id]
            if not dependencies_ready(job_tasks, task):
                continue
            need = int(task.get("requiredSlots", 1))
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
            chosen.append((task, by_id[node_id]))
        for task, node in chosen:
            self._launch(job, pool, task, node)
        return len(chosen)

    def _launch(self, job: Body, pool: Body, task: Body, node: Body) -> None:
        job_tasks = self.model.tasks[job["id"]]
        slots = int(task.get("requiredSlots", 1))
        prep_state = internal(node).setdefault("jobPrep", {}).get(job["id"])
        run_prep = bool(job.get("jobPreparationTask")) and prep_state is None
        moment = now_iso()
        job_tasks.begin_change(task)
        transition_task(task, "preparing" if run_prep else "running", moment)
        job_tasks.end_change(task)
        info = task.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
        info["startTime"] = moment
        for name in ("endTime", "exitCode", "failureInfo", "result"):
            info.pop(name, None)
        node_url = f"{self.account_url}/pools/{pool['id']}/nodes/{node['id']}"
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
        with self.model.store.transaction():
            self.model.save_task(job["id"], task)
            self.model.save_node(pool["id"], node)
        run = RunningTask(job["id"], task["id"], pool["id"], node["id"], slots)
        self.running[(job["id"], task["id"])] = run
        identity = nodes.identity(self.config, self.account_url, pool["id"], node)
        prep_spec = job.get("jobPreparationTask") if run_prep else None
        environment = job.get("commonEnvironmentSettings") or []
        packages: list[PackageBlob] | str
        pool_packages = self._pool_packages(pool)
        task_packages = self._resolve_packages(task.get("applicationPackageReferences") or [])
        if isinstance(pool_packages, str) or isinstance(task_packages, str):
            packages = pool_packages if isinstance(pool_packages, str) else str(task_packages)
        else:
            packages = pool_packages + task_packages
        windows = nodes.is_windows(pool)
        spec = dict(task)
        spec.pop("_x", None)

        def work() -> None:
            self._task_worker(run, identity, spec, environment, packages, prep_spec, windows)

        self._spawn(work, f"task-{job['id']}-{task['id']}")

    def _task_worker(
        self,
        run: RunningTask,
        identity: Any,
        spec: Body,
        environment: list[Body],
        packages: list[PackageBlob] | str,
        prep_spec: Body | None,
        windows: bool,
    ) -> None:
        try:
            if windows:
                outcome = immediate_failure(unsupported_on_host_failure(WINDOWS_REASON))
            elif isinstance(packages, str):
                outcome = immediate_failure(
                    failure_info(
                        "usererror",
                        "ApplicationPackageError",
                        f"An application package could not be used: {packages}",
                    )
                )
            else:
                if prep_spec is not None and not self._run_preparation(
                    run, identity, prep_spec, environment, packages
                ):
                    return
                launch = TaskLaunch(
                    "task", run.job_id, run.task_id, spec, environment, packages, [identity_ip(identity)]
                )
                outcome = run_task(identity, launch, self.storage, run.cancel)
        except Exception as error:  # never leave a task stuck in running because of a bug
            _LOG.exception("task %s/%s failed in the emulator", run.job_id, run.task_id)
            outcome = immediate_failure(failure_info("servererror", "NodeRuntimeError", str(error)))
        with self.model.lock:
            self._complete(run, outcome)

    def _run_preparation(
        self,
        run: RunningTask,
        identity: Any,
        prep_spec: Body,
        environment: list[Body],
        packages: list[PackageBlob],
    ) -> bool:
        """Run the job preparation task on the node first; False when the task must not run there."""
        launch = TaskLaunch(
            "jobpreparation",
            run.job_id,
            str(prep_spec.get("id", "jobpreparation")),
            prep_spec,
            environment,
            packages,
        )
        outcome = run_task(identity, launch, self.storage, run.cancel)
        with self.model.lock:
            node = self.model.nodes.get(run.pool_id, {}).get(run.node_id)
            ok = outcome.result == "success" or not prep_spec.get("waitForSuccess", True)
            if node is not None:
                internal(node).setdefault("jobPrep", {})[run.job_id] = "succeeded" if ok else "failed"
                self.model.save_node(run.pool_id, node)
            job_tasks = self.model.tasks.get(run.job_id)
            task = job_tasks.by_id.get(run.task_id) if job_tasks else None
            if ok and run.reason is None and task is not None and task["state"] == "preparing":
                job_tasks.begin_change(task)  # type: ignore[union-attr]
                transition_task(task, "running")
                job_tasks.end_change(task)  # type: ignore[union-attr]
                self.model.save_task(run.job_id, task)
                return True
            if ok and run.reason is None:
                return True
            # Batch does not run this job's tasks on a node whose preparation task failed: back to the queue.
            if run.reason is None:
                run.reason = "prepfailed"
            self._complete(run, outcome)
            return False

    def _complete(self, run: RunningTask, outcome: TaskOutcome) -> None:
        """Record how a task run ended (lock held)."""
        self.running.pop((run.job_id, run.task_id), None)
        node = self.model.nodes.get(run.pool_id, {}).get(run.node_id)
        job_tasks = self.model.tasks.get(run.job_id)
        task = job_tasks.by_id.get(run.task_id) if job_tasks else None
        with self.model.store.transaction():
            if node is not None:
                node["runningTasksCount"] = max(0, node["runningTasksCount"] - 1)
                node["runningTaskSlotsCount"] = max(0, node["runningTaskSlotsCount"] - run.slots)
                if outcome.result == "success" and run.reason is None:
                    node["totalTasksSucceeded"] += 1
                if node["state"] == "running" and node["runningTasksCount"] == 0:
                    nodes.set_node_state(node, "idle")
                self.model.save_node(run.pool_id, node)
            if task is not None and job_tasks is not None and run.reason != "delete":
                job_tasks.begin_change(task)
                self._record_outcome(run, task, outcome)
                job_tasks.end_change(task)
                self.model.save_task(run.job_id, task)
                if task["state"] == "completed":
                    self._after_completion(run.job_id, task, outcome)
        self.model.notify()

    def _record_outcome(self, run: RunningTask, task: Body, outcome: TaskOutcome) -> None:
        info = task.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
        moment = now_iso()
        if run.reason in ("requeue", "shutdown", "prepfailed"):
            if run.reason == "prepfailed":
                for name in ("startTime", "endTime", "exitCode", "failureInfo", "result"):
                    info.pop(name, None)
                transition_task(task, "active", moment)
            else:
                requeue(task, moment)
            return
        failure = outcome.failure_info
        if run.reason == "terminate" and failure is None:
            failure = failure_info("usererror", "TaskEnded", "Task Was Ended by User Request")
        if run.reason is None and should_retry(task, failure, outcome.failure_stage):
            info["retryCount"] = int(info.get("retryCount", 0)) + 1
            info["lastRetryTime"] = moment
            for name in ("endTime", "exitCode", "failureInfo", "result"):
                info.pop(name, None)
            transition_task(task, "active", moment)
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
        transition_task(task, "completed", moment)

    def _after_completion(self, job_id: str, task: Body, outcome: TaskOutcome) -> None:
        succeeded = task["executionInfo"]["result"] == "success"
        decision = exit_decision(
            task, succeeded, task["executionInfo"].get("exitCode"), outcome.failure_stage
        )
        internal(task)["dependencyAction"] = decision.dependency_action
        self.model.save_task(job_id, task)
        job = self.model.jobs.get(job_id)
        if job is None or job.get("onTaskFailure") != "performexitoptionsjobaction" or succeeded:
            return
        if decision.job_action == "terminate":
            self.jobs.terminate(job, "TaskFailed")
        elif decision.job_action == "disable":
            self.jobs.disable(job, "requeue")

    # ---- cancellation (lock held)
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
                if not release or self._stopping:
                    continue
                identity = nodes.identity(self.config, self.account_url, pool_id, node)
                launch = TaskLaunch(
                    "jobrelease",
                    job["id"],
                    str(release.get("id", "jobrelease")),
                    release,
                    job.get("commonEnvironmentSettings") or [],
                )
                self._spawn(functools.partial(self._helper_run, identity, launch), f"release-{job['id']}")

    def _helper_run(self, identity: Any, launch: TaskLaunch) -> None:
        cancel = threading.Event()
        self._helpers[threading.get_ident()] = cancel
        try:
            outcome = run_task(identity, launch, self.storage, cancel)
            _LOG.info(
                "job release task of %s on %s ended: %s", launch.job_id, identity.node_id, outcome.result
            )
        finally:
            self._helpers.pop(threading.get_ident(), None)

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        def wrapper() -> None:
            try:
                target()
            finally:
                self._workers.discard(thread)

        thread = threading.Thread(target=wrapper, name=name, daemon=True)
        self._workers.add(thread)
        thread.start()


def transition_task(task: Body, state: str, moment: str | None = None) -> None:
    transition(task, state, moment)


def requeue(task: Body, moment: str) -> None:
    info = task.setdefault("executionInfo", {"retryCount": 0, "requeueCount": 0})
    info["requeueCount"] = int(info.get("requeueCount", 0)) + 1
    info["lastRequeueTime"] = moment
    for name in ("startTime", "endTime", "exitCode", "failureInfo", "result"):
        info.pop(name, None)
    task.pop("nodeInfo", None)
    transition_task(task, "active", moment)


def identity_ip(identity: Any) -> str:
    return "127.0.0.1"


def immediate_failure(info: Body) -> TaskOutcome:
    moment: datetime = now()
    return TaskOutcome(
        exit_code=None,
        failure_info=info,
        start_time=moment,
        end_time=moment,
        result="failure",
        failure_stage="preprocessing",
    )
