"""Operations on one node: reboot, reimage, disable/enable scheduling, and removal from its pool.

What happens to the tasks running there follows the option Batch takes (``requeue``: ended and queued
again; ``terminate``: ended, completed with ``TaskEnded``; ``taskcompletion``: no new task starts there and
the running ones finish first; ``retaineddata``: as ``taskcompletion`` here, since task data is kept until its
task is deleted). A rebooted node boots again: its start task runs again, and so do the job preparation tasks
(``rerunOnNodeRebootAfterSuccess``); the pool's application packages are installed as they are now. A
reimaged node also loses its disk. All methods run with the model lock held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchrun.emulator.model import Body, internal
from batchrun.emulator.node import append_agent_log, wipe_node
from batchrun.emulator.scheduler import nodes

if TYPE_CHECKING:
    from batchrun.emulator.scheduler.core import Scheduler

WAITING_OPTIONS = ("taskcompletion", "retaineddata")


class NodeOperations:
    def __init__(self, scheduler: Scheduler) -> None:
        self.scheduler = scheduler
        self.model = scheduler.model

    def _end_running(self, pool_id: str, node_id: str, option: str) -> None:
        for run in self.scheduler.running.values():
            if run.pool_id == pool_id and run.node_id == node_id and run.reason is None:
                run.reason = option
                run.cancel.set()

    def restart(self, pool: Body, node: Body, option: str, reimage: bool) -> None:
        """Reboot (or reimage) ``node``; with a waiting option once its running tasks have finished."""
        operation = "reimage" if reimage else "reboot"
        if option in WAITING_OPTIONS and node["runningTasksCount"] > 0:
            internal(node)["pendingOperation"] = operation
        else:
            self._end_running(pool["id"], node["id"], option)
            self._begin(pool, node, operation)
        self.model.save_node(pool["id"], node)
        self.model.notify()

    def _begin(self, pool: Body, node: Body, operation: str) -> None:
        internal(node).pop("pendingOperation", None)
        nodes.set_node_state(node, "rebooting" if operation == "reboot" else "reimaging")
        internal(node)["restart"] = operation
        append_agent_log(
            nodes.identity(self.scheduler.config, "", pool["id"], node).root, f"{operation} requested"
        )

    def reconcile(self, pool: Body, node: Body) -> bool:
        """Carry a pending restart on; True when ``node`` should boot now (its running tasks have ended)."""
        pending = internal(node).get("pendingOperation")
        if pending and node["runningTasksCount"] == 0:
            self._begin(pool, node, str(pending))
            self.model.save_node(pool["id"], node)
        if node["state"] not in ("rebooting", "reimaging") or node["runningTasksCount"] > 0:
            return False
        operation = internal(node).pop("restart", "reboot")
        if operation == "reimage":
            wipe_node(self.scheduler.config.nodes_dir, pool["id"], node["id"])
            internal(node)["jobPrep"] = {}
        else:
            prep = internal(node).setdefault("jobPrep", {})
            for job_id in list(prep):
                job = self.model.jobs.get(job_id)
                spec = (job or {}).get("jobPreparationTask") or {}
                if spec.get("rerunOnNodeRebootAfterSuccess", True) or prep[job_id] != "succeeded":
                    del prep[job_id]
        node.pop("lastBootTime", None)
        node.pop("startTaskInfo", None)
        internal(node).pop("packages", None)
        return True

    def disable_scheduling(self, pool: Body, node: Body, option: str) -> None:
        node["schedulingState"] = "disabled"
        if option not in WAITING_OPTIONS:
            self._end_running(pool["id"], node["id"], option)
        self.model.save_node(pool["id"], node)
        self.model.notify()

    def enable_scheduling(self, pool: Body, node: Body) -> None:
        node["schedulingState"] = "enabled"
        self.model.save_node(pool["id"], node)
        self.model.notify()

    def remove(self, pool: Body, removed: list[Body], option: str) -> None:
        """Take ``removed`` out of the pool: the targets drop by as many, the pool resizes to them."""
        dedicated = sum(1 for node in removed if node.get("isDedicated"))
        pool["targetDedicatedNodes"] = max(0, int(pool.get("targetDedicatedNodes", 0)) - dedicated)
        pool["targetLowPriorityNodes"] = max(
            0, int(pool.get("targetLowPriorityNodes", 0)) - (len(removed) - dedicated)
        )
        for node in removed:
            self.scheduler.pools.retire_node(pool, node, option)
        internal(pool)["deallocation"] = option
        pool["allocationState"] = "resizing"
        self.model.save_pool(pool)
        self.model.notify()
