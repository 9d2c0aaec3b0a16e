"""Pools and their nodes: allocation to the targets, resizing, retiring nodes, autoscale runs, node boot.

Runs with the model lock held, called from the scheduler loop; a node boots (folder layout, start task) in a
worker thread of its own.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from batchrun.emulator.model import Body, find_by_id, internal
from batchrun.emulator.node import (
    TaskLaunch,
    append_agent_log,
    prepare_node,
    remove_pool_directory,
    run_task,
    unsupported_on_host_failure,
)
from batchrun.emulator.node.failures import failure_info
from batchrun.emulator.packages import blobs_of_snapshot, snapshot_packages
from batchrun.emulator.scheduler import autoscale, nodes
from batchrun.emulator.scheduler.task_records import immediate_failure
from batchrun.emulator.scheduler.tasks import WINDOWS_REASON
from batchrun.emulator.store import Table
from batchrun.emulator.timefmt import iso, now, now_iso, parse_iso

if TYPE_CHECKING:
    from batchrun.emulator.scheduler.core import Scheduler

_LOG = logging.getLogger("batchrun.emulator.scheduler")


class PoolManager:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.model = scheduler.model
        self.config = scheduler.config
        self.boot_cancels: dict[tuple[str, str], threading.Event] = {}

    def reconcile(self, pool: Body) -> float:
        pool_id = pool["id"]
        pool_nodes = self.model.nodes.setdefault(pool_id, {})
        if pool["state"] != "deleting" and self._auto_pool_finished(pool):
            pool["state"] = "deleting"
            pool["stateTransitionTime"] = now_iso()
            self.model.save_pool(pool)
        if pool["state"] == "deleting":
            for node in list(pool_nodes.values()):
                self.retire_node(pool, node, "requeue")
            self.scheduler.cancel_releases_in(pool_id)
            if (
                not pool_nodes
                and not any(key[0] == pool_id for key in self.scheduler.booting)
                and not self.scheduler.releasing_in(pool_id)
            ):
                del self.model.pools[pool_id]
                del self.model.nodes[pool_id]
                with self.model.store.transaction():
                    self.model.store.delete(Table.POOLS, "", pool_id)
                    self.model.store.delete_children(Table.NODES, pool_id)
                # No process runs on its nodes any more: Batch frees the nodes and their disks with the pool.
                remove_pool_directory(self.config.nodes_dir, pool_id)
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
            booting = (pool_id, node["id"]) in self.scheduler.booting
            restart = not booting and self.scheduler.node_ops.reconcile(pool, node)
            if restart or (node["state"] in nodes.BOOTING and not booting):
                self._boot(pool, node)
            if (
                node["state"] == "leavingpool"
                and node["runningTasksCount"] == 0
                and (pool_id, node["id"]) not in self.scheduler.booting
            ):
                del pool_nodes[node["id"]]
                self.model.store.delete(Table.NODES, pool_id, node["id"])
        if pool["allocationState"] == "stopping":
            # Batch keeps the nodes allocated so far and the target, and reports the stop (recorded:
            # test_batch_scale_pools: stopping, then steady with current 0, target 2, ResizeStopped).
            live = [n for n in pool_nodes.values() if n["state"] != "leavingpool"]
            dedicated = sum(1 for n in live if n.get("isDedicated"))
            errors = [
                {
                    "code": "ResizeStopped",
                    "message": f"Desired number of {kind} nodes could not be allocated due to a stop resize "
                    "operation",
                }
                for kind, current, target in (
                    ("dedicated", dedicated, pool.get("targetDedicatedNodes", 0)),
                    ("low priority", len(live) - dedicated, pool.get("targetLowPriorityNodes", 0)),
                )
                if current != target
            ]
            if errors:
                pool["resizeErrors"] = errors
            self._set_allocation(pool, "steady")
        elif pool["allocationState"] == "resizing":
            self._resize(pool, pool_nodes)
        return wait

    def _auto_pool_finished(self, pool: Body) -> bool:
        """An auto pool whose job (or job schedule) has completed or is gone, with no release task on it."""
        owner = internal(pool).get("autoPool")
        if not owner or owner.get("keepAlive") or self.scheduler.releasing_in(pool["id"]):
            return False
        owners = self.model.jobs if owner.get("kind") == "job" else self.model.schedules
        found = find_by_id(owners, str(owner.get("id", "")))
        return found is None or found["state"] == "completed"

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
                    self.retire_node(pool, node, option)
        self.model.save_pool(pool)
        settled = all(n["state"] not in (*nodes.BOOTING, "leavingpool") for n in pool_nodes.values())
        if settled:
            self._set_allocation(pool, "steady")

    def retire_node(self, pool: Body, node: Body, option: str) -> None:
        boot = self.boot_cancels.get((pool["id"], node["id"]))
        if boot is not None:
            boot.set()  # a start task still running must not keep the node (or a deleted pool) alive
        if node["state"] != "leavingpool":
            nodes.set_node_state(node, "leavingpool")
            node["schedulingState"] = "disabled"
            self.model.save_node(pool["id"], node)
        if option in ("requeue", "terminate"):
            for run in self.scheduler.running.values():
                if run.pool_id == pool["id"] and run.node_id == node["id"] and run.reason is None:
                    run.reason = option
                    run.cancel.set()
        if node["runningTasksCount"] == 0 and (pool["id"], node["id"]) not in self.scheduler.booting:
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
            pool["autoScaleRun"] = {
                "timestamp": now_iso(),
                "results": autoscale.results_text(results, (dedicated, low, option)),
            }
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
        self.scheduler.booting.add(key)
        cancel = threading.Event()
        self.boot_cancels[key] = cancel
        self.scheduler.spawn(lambda: self._boot_worker(pool["id"], node["id"], cancel), f"boot-{node['id']}")

    def _boot_worker(self, pool_id: str, node_id: str, cancel: threading.Event) -> None:
        try:
            with self.model.lock:
                pool = self.model.pools.get(pool_id)
                node = self.model.nodes.get(pool_id, {}).get(node_id)
                if pool is None or node is None or self.scheduler.stopping:
                    return
                identity = nodes.identity(self.config, self.scheduler.account_url, pool_id, node)
            prepare_node(identity)
            append_agent_log(identity.root, "node booted")
            with self.model.lock:
                if node["state"] == "leavingpool":
                    return
                # The node installs the pool's packages as they are now; later changes wait for a reboot.
                snapshot = snapshot_packages(self.model, pool.get("applicationPackageReferences") or [])
                internal(node)["packages"] = snapshot
                nodes.set_node_state(node, "starting")
                start_task = pool.get("startTask")
                wait = bool(start_task.get("waitForSuccess", True)) if start_task else False
                if start_task:
                    node["startTask"] = start_task
                    node["startTaskInfo"] = {"state": "running", "startTime": now_iso(), "retryCount": 0}
                nodes.set_node_state(node, "waitingforstarttask" if wait else "idle")
                self.model.save_node(pool_id, node)
                self.model.notify()
                packages = blobs_of_snapshot(snapshot)
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
                    outcome = run_task(identity, launch, self.scheduler.storage, cancel)
                limit = int(start_task.get("maxTaskRetryCount", 0))
                if outcome.result == "success" or cancel.is_set() or (limit != -1 and attempts >= limit):
                    break
                attempts += 1
            append_agent_log(
                identity.root, f"start task ended: {outcome.result}, exit code {outcome.exit_code}"
            )
            with self.model.lock:
                if cancel.is_set() and self.scheduler.stopping:
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
                self.scheduler.booting.discard((pool_id, node_id))
                self.boot_cancels.pop((pool_id, node_id), None)
                self.model.notify()
