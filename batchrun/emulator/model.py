"""The in-memory model of every resource, guarded by one lock and written through to the SQLite store.

Bodies are the REST JSON shapes (camelCase) exactly as served, plus an ``_x`` dict of emulator-internal fields
that :func:`public` strips. The API handlers and the scheduler mutate bodies only through this module's
helpers, so ETags, timestamps, counters and persistence stay consistent.
"""

from __future__ import annotations

import bisect
import itertools
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from batchrun.emulator.store import Store, Table
from batchrun.emulator.timefmt import new_etag, now_iso

Body = dict[str, Any]
TASK_STATES = ("active", "preparing", "running", "completed")


def public(body: Body) -> Body:
    return {key: value for key, value in body.items() if key != "_x"}


def internal(body: Body) -> dict[str, Any]:
    extra: dict[str, Any] = body.setdefault("_x", {})
    return extra


def touch(body: Body) -> None:
    """A new ETag and lastModified: for changes a client made (not for state transitions)."""
    body["eTag"] = new_etag()
    body["lastModified"] = now_iso()


def transition(body: Body, state: str, moment: str | None = None) -> None:
    if body.get("state") == state:
        return
    moment = moment or now_iso()
    if "state" in body:
        body["previousState"] = body["state"]
        body["previousStateTransitionTime"] = body.get("stateTransitionTime", moment)
    body["state"] = state
    body["stateTransitionTime"] = moment


def job_pool_id(job: Body) -> str:
    """The pool a job's tasks run on: its ``poolInfo.poolId``, or the auto pool created for it."""
    return str(job.get("executionInfo", {}).get("poolId") or job.get("poolInfo", {}).get("poolId") or "")


def find_by_id(items: Mapping[str, Body], resource_id: str) -> Body | None:
    """Batch ids are case-preserving and case-insensitive (SDK model docstrings); exact match first."""
    found = items.get(resource_id)
    if found is None:
        lowered = resource_id.lower()
        found = next((item for key, item in items.items() if key.lower() == lowered), None)
    return found


@dataclass
class JobTasks:
    """The tasks of one job: by id, in id order (listing), active ones in creation order, counters."""

    by_id: dict[str, Body] = field(default_factory=dict)
    sorted_ids: list[str] = field(default_factory=list)
    pending: dict[str, None] = field(default_factory=dict)  # active task ids, in creation order
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TASK_STATES, 0))
    slot_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TASK_STATES, 0))
    succeeded: list[int] = field(default_factory=lambda: [0, 0])  # tasks, slots
    failed: list[int] = field(default_factory=lambda: [0, 0])
    numeric: dict[int, list[str]] = field(default_factory=dict)  # integer-valued ids, for taskIdRanges
    lowered: dict[str, str] = field(default_factory=dict)  # lower-cased id -> id (ids are case-insensitive)

    def find(self, task_id: str) -> Body | None:
        """The task with this id, compared without case as Batch does."""
        task = self.by_id.get(task_id)
        if task is None and task_id.lower() in self.lowered:
            task = self.by_id.get(self.lowered[task_id.lower()])
        return task

    def _account(self, task: Body, sign: int) -> None:
        state = task["state"]
        slots = int(task.get("requiredSlots", 1))
        self.counts[state] += sign
        self.slot_counts[state] += sign * slots
        if state == "completed":
            outcome = (
                self.succeeded if task.get("executionInfo", {}).get("result") == "success" else self.failed
            )
            outcome[0] += sign
            outcome[1] += sign * slots
        if state == "active":
            if sign > 0:
                self.pending[task["id"]] = None
            else:
                self.pending.pop(task["id"], None)

    def add(self, task: Body) -> None:
        self.by_id[task["id"]] = task
        self.lowered[task["id"].lower()] = task["id"]
        bisect.insort(self.sorted_ids, task["id"])
        if task["id"].isdigit():
            self.numeric.setdefault(int(task["id"]), []).append(task["id"])
        self._account(task, +1)

    def remove(self, task_id: str) -> Body | None:
        task = self.by_id.pop(task_id, None)
        if task is not None:
            self.lowered.pop(task_id.lower(), None)
            self._account(task, -1)
            if task_id.isdigit():
                names = self.numeric.get(int(task_id), [])
                if task_id in names:
                    names.remove(task_id)
            index = bisect.bisect_left(self.sorted_ids, task_id)
            if index < len(self.sorted_ids) and self.sorted_ids[index] == task_id:
                del self.sorted_ids[index]
        return task

    def begin_change(self, task: Body) -> None:
        """Call before changing a task's state or result, then :meth:`end_change` after."""
        self._account(task, -1)

    def end_change(self, task: Body) -> None:
        self._account(task, +1)

    def after(self, marker: str | None) -> Iterator[tuple[str, Body]]:
        start = 0 if marker is None else bisect.bisect_right(self.sorted_ids, marker)
        ids = self.sorted_ids
        for index in range(start, len(ids)):
            task = self.by_id.get(ids[index])
            if task is not None:
                yield ids[index], task

    @property
    def unfinished(self) -> int:
        return self.counts["active"] + self.counts["preparing"] + self.counts["running"]


class Model:
    def __init__(self, store: Store) -> None:
        self.store = store
        self.lock = threading.RLock()
        self.changed = threading.Condition(self.lock)
        self.pools: dict[str, Body] = {}
        self.nodes: dict[str, dict[str, Body]] = {}
        self.jobs: dict[str, Body] = {}
        self.schedules: dict[str, Body] = {}
        self.tasks: dict[str, JobTasks] = {}
        self.applications: dict[str, Body] = {}
        self.packages: dict[str, dict[str, Body]] = {}
        self._sequence = itertools.count()
        self.dirty = False

    # ---- loading
    def reload(self) -> None:
        """Forget memory and read the database again: after a write the database refused, memory must not
        keep what was never saved (lock held)."""
        with self.lock:
            for items in (self.pools, self.nodes, self.jobs, self.schedules, self.tasks):
                items.clear()
            self.applications.clear()
            self.packages.clear()
            self.load()

    def load(self) -> None:
        with self.lock:
            for _, key, body in self.store.load(Table.POOLS):
                self.pools[key] = body
                self.nodes.setdefault(key, {})
            for parent, key, body in self.store.load(Table.NODES):
                self.nodes.setdefault(parent, {})[key] = body
            for _, key, body in self.store.load(Table.JOBS):
                self.jobs[key] = body
                self.tasks.setdefault(key, JobTasks())
            loaded: list[tuple[int, str, Body]] = []
            for parent, _, body in self.store.load(Table.TASKS):
                loaded.append((int(internal(body).get("seq", 0)), parent, body))
            loaded.sort(key=lambda item: item[0])
            for _, parent, body in loaded:
                self.tasks.setdefault(parent, JobTasks()).add(body)
            highest = max((item[0] for item in loaded), default=-1)
            self._sequence = itertools.count(highest + 1)
            for _, key, body in self.store.load(Table.JOBSCHEDULES):
                self.schedules[key] = body
            for _, key, body in self.store.load(Table.APPLICATIONS):
                self.applications[key] = body
            for parent, key, body in self.store.load(Table.PACKAGES):
                self.packages.setdefault(parent, {})[key] = body

    def next_sequence(self) -> int:
        return next(self._sequence)

    # ---- persistence (call with the lock held)
    def save_pool(self, pool: Body) -> None:
        self.store.put(Table.POOLS, "", pool["id"], pool)

    def save_node(self, pool_id: str, node: Body) -> None:
        self.store.put(Table.NODES, pool_id, node["id"], node)

    def save_job(self, job: Body) -> None:
        self.store.put(Table.JOBS, "", job["id"], job)

    def save_schedule(self, schedule: Body) -> None:
        self.store.put(Table.JOBSCHEDULES, "", schedule["id"], schedule)

    def save_task(self, job_id: str, task: Body) -> None:
        self.store.put(Table.TASKS, job_id, task["id"], task)

    def save_application(self, application: Body) -> None:
        self.store.put(Table.APPLICATIONS, "", application["name"].lower(), application)

    def save_package(self, application_name: str, package: Body) -> None:
        self.store.put(Table.PACKAGES, application_name, package["name"], package)

    def set_task_state(self, job_id: str, task: Body, state: str) -> None:
        job_tasks = self.tasks[job_id]
        job_tasks.begin_change(task)
        transition(task, state)
        job_tasks.end_change(task)

    def notify(self) -> None:
        """Wake the scheduler: something it may act on has changed."""
        with self.lock:
            self.dirty = True
            self.changed.notify_all()
