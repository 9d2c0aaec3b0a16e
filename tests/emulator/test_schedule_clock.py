"""The job schedule clock's decisions, on a real store with due times set in the past: create, wait, skip
a recurrence missed by its start window, stop after doNotRunAfter, complete."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from batchrun.emulator.model import Body, Model
from batchrun.emulator.scheduler.schedules import ScheduleClock
from batchrun.emulator.store import Store


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


class Jobs:
    def __init__(self) -> None:
        self.terminated: list[str] = []

    def terminate(self, job: Body, reason: str) -> None:
        self.terminated.append(job["id"])

    def delete(self, job: Body) -> None:
        pass


class Scheduler:
    account_url = "http://127.0.0.1:1"

    def __init__(self) -> None:
        self.jobs = Jobs()


@pytest.fixture
def clock(tmp_path: Path) -> Any:
    model = Model(Store(tmp_path / "emulator.db"))
    clock = ScheduleClock(model, Scheduler())  # type: ignore[arg-type]
    created: list[str] = []

    def create_job(schedule: Body) -> Body:
        job = {
            "id": f"{schedule['id']}:job-{len(created) + 1}",
            "state": "active",
            "creationTime": iso(now()),
        }
        job["_x"] = {"schedule": schedule["id"]}
        model.jobs[job["id"]] = job
        created.append(job["id"])
        return job

    clock.create_job = create_job
    clock.created = created
    return clock


def now() -> datetime:
    return datetime.now(timezone.utc)


def schedule(clock: Any, due: datetime, **timing: str) -> Body:
    body: Body = {
        "id": "s",
        "state": "active",
        "creationTime": iso(due),
        "stateTransitionTime": iso(due),
        "schedule": timing,
        "executionInfo": {"nextRunTime": iso(due)},
    }
    clock.model.schedules["s"] = body
    return body


def test_a_due_job_is_created_and_the_next_one_is_one_interval_on(clock: Any) -> None:
    due = now() - timedelta(minutes=10)
    body = schedule(clock, due, recurrenceInterval="P1D", startWindow="PT1H")
    clock.advance(body)
    assert clock.created == ["s:job-1"]
    assert body["executionInfo"]["recentJob"]["id"] == "s:job-1"
    assert body["executionInfo"]["nextRunTime"] == iso(due + timedelta(days=1))


def test_a_due_job_waits_for_the_active_one_within_its_start_window(clock: Any) -> None:
    due = now() - timedelta(minutes=10)
    body = schedule(clock, due, recurrenceInterval="P1D", startWindow="PT1H")
    clock.model.jobs["s:job-0"] = {
        "id": "s:job-0",
        "state": "active",
        "creationTime": iso(due),
        "_x": {"schedule": "s"},
    }
    clock.advance(body)
    assert clock.created == []
    assert body["executionInfo"]["nextRunTime"] == iso(due)


def test_a_recurrence_missed_by_its_start_window_is_skipped(clock: Any) -> None:
    due = now() - timedelta(hours=2)
    body = schedule(clock, due, recurrenceInterval="P1D", startWindow="PT1H")
    clock.model.jobs["s:job-0"] = {
        "id": "s:job-0",
        "state": "active",
        "creationTime": iso(due),
        "_x": {"schedule": "s"},
    }
    clock.advance(body)
    assert clock.created == []
    assert body["executionInfo"]["nextRunTime"] == iso(due + timedelta(days=1))


def test_nothing_starts_after_do_not_run_after_and_the_schedule_completes(clock: Any) -> None:
    due = now() - timedelta(hours=2)
    body = schedule(clock, due, recurrenceInterval="PT1H", doNotRunAfter=iso(now() - timedelta(hours=1)))
    clock.advance(body)
    assert clock.created == []
    assert "nextRunTime" not in body["executionInfo"]
    clock.advance(body)
    assert body["state"] == "completed" and body["executionInfo"]["endTime"]


def test_a_schedule_without_recurrence_completes_after_its_only_job(clock: Any) -> None:
    body = schedule(clock, now() - timedelta(seconds=1))
    clock.advance(body)
    assert clock.created == ["s:job-1"] and "nextRunTime" not in body["executionInfo"]
    clock.advance(body)
    assert body["state"] == "active"  # its job still runs
    clock.model.jobs["s:job-1"]["state"] = "completed"
    clock.advance(body)
    assert body["state"] == "completed"


def test_terminate_ends_the_active_job_then_completes(clock: Any) -> None:
    body = schedule(clock, now() + timedelta(days=1), recurrenceInterval="P1D")
    clock.model.jobs["s:job-1"] = {
        "id": "s:job-1",
        "state": "active",
        "creationTime": iso(now()),
        "_x": {"schedule": "s"},
    }
    body["state"] = "terminating"
    clock.advance(body)
    assert clock.scheduler.jobs.terminated == ["s:job-1"] and body["state"] == "terminating"
    clock.model.jobs["s:job-1"]["state"] = "completed"
    clock.advance(body)
    assert body["state"] == "completed"


def test_many_missed_recurrences_are_skipped_at_once(clock: Any) -> None:
    due = now() - timedelta(days=7, minutes=30)
    body = schedule(clock, due, recurrenceInterval="PT1M", startWindow="PT1M")
    clock.advance(body)
    following = datetime.fromisoformat(body["executionInfo"]["nextRunTime"].replace("Z", "+00:00"))
    assert now() < following <= now() + timedelta(minutes=1)
    assert (following - due) % timedelta(minutes=1) == timedelta(0)
