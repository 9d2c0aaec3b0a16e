"""Job state transitions: terminate, disable, enable, delete, completion and the job's wall-clock limit.

Transitions that must wait for running tasks (terminating, disabling, deleting) are started here and
finished by :meth:`JobTransitions.reconcile` once the job has no running task left. All methods run with the
model lock held.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from batchrun.emulator.model import Body, Model, internal, transition
from batchrun.emulator.store import Table
from batchrun.emulator.timefmt import FOREVER, now, parse_duration, parse_iso

if TYPE_CHECKING:
    from batchrun.emulator.scheduler.core import Scheduler


# How long after its creation (or last change) a job with no tasks waits before onAllTasksComplete ends it.
EMPTY_JOB_GRACE_SECONDS = 30.0


class JobTransitions:
    def __init__(self, model: Model, scheduler: Scheduler) -> None:
        self.model = model
        self.scheduler = scheduler

    def _running_of(self, job_id: str) -> list[str]:
        return [task_id for (owner, task_id) in self.scheduler.running if owner == job_id]

    def _cancel_running(self, job_id: str, reason: str) -> None:
        for task_id in self._running_of(job_id):
            self.scheduler.cancel(job_id, task_id, reason)

    def terminate(self, job: Body, reason: str) -> None:
        if job["state"] in ("completed", "terminating", "deleting"):
            return
        transition(job, "terminating")
        job.setdefault("executionInfo", {})["terminateReason"] = reason
        self._cancel_running(job["id"], "terminate")
        self.model.save_job(job)
        self.model.notify()

    def disable(self, job: Body, option: str) -> None:
        if job["state"] in ("disabling", "disabled"):
            return
        transition(job, "disabling")
        internal(job)["disableTasks"] = option
        if option in ("requeue", "terminate"):
            self._cancel_running(job["id"], option)
        self.model.save_job(job)
        self.model.notify()

    def enable(self, job: Body) -> None:
        if job["state"] in ("disabled", "disabling"):
            transition(job, "enabling")
            self.model.save_job(job)
            self.model.notify()

    def delete(self, job: Body) -> None:
        if job["state"] == "deleting":
            return
        transition(job, "deleting")
        self._cancel_running(job["id"], "delete")
        self.model.save_job(job)
        self.model.notify()

    def _complete(self, job: Body) -> None:
        transition(job, "completed")
        job.setdefault("executionInfo", {})["endTime"] = job["stateTransitionTime"]
        self.model.save_job(job)
        self.scheduler.run_release(job)

    def reconcile(self) -> float:
        """Finish pending transitions; returns seconds until the next job wall-clock deadline (or 60)."""
        wait = 60.0
        for job in list(self.model.jobs.values()):
            state = job["state"]
            job_id = job["id"]
            if state == "deleting":
                if not self._running_of(job_id):
                    self.scheduler.run_release(job)
                    del self.model.jobs[job_id]
                    del self.model.tasks[job_id]
                    with self.model.store.transaction():
                        self.model.store.delete(Table.JOBS, "", job_id)
                        self.model.store.delete_children(Table.TASKS, job_id)
                    # Batch deletes the job's folders on the nodes: once the release tasks just started end.
                    self.scheduler.delete_job_files(job_id)
            elif state == "terminating":
                if not self._running_of(job_id):
                    self._complete(job)
            elif state == "disabling":
                # disableTasks=terminate ends running tasks only (DisableBatchJobOption in the SDK):
                # active tasks stay active and run once the job is enabled again.
                if not self._running_of(job_id):
                    transition(job, "disabled")
                    self.model.save_job(job)
            elif state == "enabling":
                transition(job, "active")
                self.model.save_job(job)
            elif state == "active":
                job_tasks = self.model.tasks[job_id]
                if job.get("onAllTasksComplete") == "terminatejob" and job_tasks.unfinished == 0:
                    # A job that never had a task is complete too, but Batch notices that a while after
                    # the job was created (recorded: such a job is still active right after creation), so
                    # tasks added just after the job still run.
                    grace = 0.0 if job_tasks.by_id else self._empty_job_grace(job)
                    if grace <= 0:
                        self.terminate(job, "AllTasksComplete")
                        if not self._running_of(job_id):
                            self._complete(job)
                        continue
                    wait = min(wait, grace)
                wait = min(wait, self._wall_clock(job))
        return wait

    @staticmethod
    def _empty_job_grace(job: Body) -> float:
        """Seconds until an empty job with onAllTasksComplete terminatejob counts as complete."""
        since = parse_iso(str(job.get("lastModified") or job["creationTime"]))
        return EMPTY_JOB_GRACE_SECONDS - (now() - since).total_seconds()

    def _wall_clock(self, job: Body) -> float:
        limit_text = job.get("constraints", {}).get("maxWallClockTime")
        if not limit_text or limit_text == FOREVER:
            return 60.0
        limit = parse_duration(str(limit_text))
        if limit is None:
            return 60.0
        try:
            deadline = parse_iso(job["creationTime"]) + limit
        except OverflowError:
            return 60.0
        remaining = (deadline - now()).total_seconds()
        if remaining <= 0:
            self.terminate(job, "MaxWallClockTimeExpiry")
            return 0.01
        return remaining
