"""Job schedules on a clock: jobs created at each recurrence, the schedule's states and its end.

Batch's rules (REST ``Schedule`` and the job schedule docs): the first job is due at creation, or at
``doNotRunUntil``; then every ``recurrenceInterval`` after the previous due time. At most one job of a
schedule is active at once: a due job waits for the previous one to complete, and a recurrence not started
within ``startWindow`` of its due time is skipped. No job starts after ``doNotRunAfter``. A schedule without
a recurrence (or past ``doNotRunAfter``) completes once its last job has completed. All methods run with the
model lock held; jobs are created through ``create_job``, which the server wires to the job API.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from batchrun.emulator.model import Body, Model, internal, transition
from batchrun.emulator.store import Table
from batchrun.emulator.timefmt import iso, now, parse_duration, parse_iso

if TYPE_CHECKING:
    from batchrun.emulator.scheduler.core import Scheduler

CreateJob = Callable[[Body], Body]


def jobs_of(model: Model, schedule_id: str) -> list[Body]:
    """The jobs a schedule created that still exist, oldest first."""
    owned = [job for job in model.jobs.values() if internal(job).get("schedule") == schedule_id]
    return sorted(owned, key=lambda job: job["creationTime"])


def first_run(schedule: Body, created: datetime) -> datetime:
    start = schedule.get("schedule", {}).get("doNotRunUntil")
    return max(created, parse_iso(start)) if start else created


def _duration(schedule: Body, name: str) -> timedelta | None:
    text = schedule.get("schedule", {}).get(name)
    return parse_duration(str(text)) if text else None


def next_due(schedule: Body, due: datetime) -> datetime | None:
    """The recurrence after ``due``, or None when there is none (no interval, or past doNotRunAfter)."""
    interval = _duration(schedule, "recurrenceInterval")
    if interval is None:
        return None
    following = due + interval
    last = schedule.get("schedule", {}).get("doNotRunAfter")
    if last and following > parse_iso(last):
        return None
    return following


def next_due_after(schedule: Body, due: datetime, moment: datetime) -> datetime | None:
    """The first recurrence after ``moment`` (missed ones are skipped, not caught up one by one)."""
    interval = _duration(schedule, "recurrenceInterval")
    if interval is None or interval.total_seconds() <= 0:
        return None
    steps = int((moment - due) / interval) + 1
    following = due + steps * interval
    last = schedule.get("schedule", {}).get("doNotRunAfter")
    if last and following > parse_iso(last):
        return None
    return following


class ScheduleClock:
    def __init__(self, model: Model, scheduler: Scheduler) -> None:
        self.model = model
        self.scheduler = scheduler
        self.create_job: CreateJob | None = None

    def reconcile(self) -> float:
        """One pass over every schedule; returns seconds until the next due time (at most 60)."""
        wait = 60.0
        for schedule in list(self.model.schedules.values()):
            wait = min(wait, self.advance(schedule))
        return wait

    def advance(self, schedule: Body) -> float:
        state = schedule["state"]
        jobs = jobs_of(self.model, schedule["id"])
        unfinished = [job for job in jobs if job["state"] != "completed"]
        if state == "deleting":
            for job in jobs:
                self.scheduler.jobs.delete(job)
            if not jobs:
                del self.model.schedules[schedule["id"]]
                self.model.store.delete(Table.JOBSCHEDULES, "", schedule["id"])
            return 60.0
        if state == "terminating":
            for job in unfinished:
                self.scheduler.jobs.terminate(job, "UserTerminate")
            if not unfinished:
                self._complete(schedule)
            return 60.0
        if state != "active":
            return 60.0
        info = schedule.setdefault("executionInfo", {})
        due_text = info.get("nextRunTime")
        if due_text is None:
            if not unfinished:
                self._complete(schedule)
            return 60.0
        due = parse_iso(due_text)
        moment = now()
        if moment < due:
            return (due - moment).total_seconds()
        last = schedule.get("schedule", {}).get("doNotRunAfter")
        window = _duration(schedule, "startWindow")
        if last and moment > parse_iso(last):
            self._set_next(schedule, None)  # no job starts after doNotRunAfter
            return 0.01
        if window is not None and moment > due + window:
            self._set_next(schedule, next_due_after(schedule, due, moment))  # this recurrence is missed
            return 0.01
        if unfinished:
            return (due + window - moment).total_seconds() if window is not None else 60.0
        if self.create_job is None:
            return 1.0
        job = self.create_job(schedule)
        info["recentJob"] = {"id": job["id"], "url": f"{self.scheduler.account_url}/jobs/{job['id']}"}
        self._set_next(schedule, next_due(schedule, due))
        return 0.01

    def _set_next(self, schedule: Body, due: datetime | None) -> None:
        info = schedule.setdefault("executionInfo", {})
        if due is None:
            info.pop("nextRunTime", None)
        else:
            info["nextRunTime"] = iso(due)
        self.model.save_schedule(schedule)
        self.model.notify()

    def _complete(self, schedule: Body) -> None:
        transition(schedule, "completed")
        info = schedule.setdefault("executionInfo", {})
        info.pop("nextRunTime", None)
        info["endTime"] = schedule["stateTransitionTime"]
        self.model.save_schedule(schedule)
        self.model.notify()
