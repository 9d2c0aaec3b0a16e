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
from typing import Any

import msgspec
from msgspec import field

from batchrun.emulator.store import Store, StoreUnreadable, Table, decode
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


class TaskTable:
    """The tasks of one job by id, each held as its stored JSON text until it is used.

    A task nobody has asked for since it was loaded or saved is the JSON text the store holds (about a
    quarter of the memory of the same task as a tree of dicts): a job of 100,000 idle tasks costs about the
    size of its data. :meth:`get` decodes a task once and keeps that dict, so callers that change a task and
    save it work on the one live copy; :meth:`settle` (called by ``Model.save_task``) puts the saved text
    back in its place, so memory holds what the database holds. :meth:`peek` and :meth:`values` decode
    without keeping (listings, scans): their dicts are copies that become the task only when saved.
    """

    __slots__ = ("_items",)

    def __init__(self) -> None:
        self._items: dict[str, Body | str] = {}

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, task_id: object) -> bool:
        return task_id in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __getitem__(self, task_id: str) -> Body:
        task = self.get(task_id)
        if task is None:
            raise KeyError(task_id)
        return task

    def get(self, task_id: str) -> Body | None:
        """The task as the one live dict (decoded once and kept until it is saved)."""
        item = self._items.get(task_id)
        if isinstance(item, str):
            item = self._items[task_id] = _decode(item)
        return item

    def peek(self, task_id: str) -> Body | None:
        """The task for reading: the live dict, or a decoded copy that is not kept."""
        item = self._items.get(task_id)
        return _decode(item) if isinstance(item, str) else item

    def keep(self, task_id: str, task: Body) -> Body:
        """Make ``task`` (a :meth:`peek` of this id, unchanged since) the live dict; returns the live dict."""
        item = self._items.get(task_id)
        if isinstance(item, str):
            self._items[task_id] = item = task
        return task if item is None else item

    def stored(self, task_id: str) -> Body | str | None:
        """The task as held: the live dict, or its stored JSON text (``_x`` last, see :func:`public_json`)."""
        return self._items.get(task_id)

    def values(self) -> Iterator[Body]:
        """Every task for reading, decoded one at a time and not kept (a changed one must be saved)."""
        for item in list(self._items.values()):
            yield _decode(item) if isinstance(item, str) else item

    def put(self, task_id: str, task: Body | str) -> None:
        self._items[task_id] = task

    def settle(self, task_id: str, text: str) -> None:
        """``text`` was just saved for this task: hold that instead of the dict."""
        if task_id in self._items:
            self._items[task_id] = text

    def pop(self, task_id: str) -> Body | None:
        item = self._items.pop(task_id, None)
        return _decode(item) if isinstance(item, str) else item


_UNDER_WAY = ("running", "preparing")


def _decode(text: str) -> Body:
    body: Body = decode(text)
    return body


_X_MEMBER = ',"_x":{'


def public_json(text: str) -> str:
    """A stored task's JSON text without its ``_x`` member, with no decoding.

    Held texts always end with ``_x`` (``Model.save_task`` writes it last, the store moves it last on load),
    and ``_x`` holds only the emulator's own keys, none of them ``_x``: the last ``,"_x":{`` outside a string
    (inside one, the quotes would be escaped) is where it starts.
    """
    cut = text.rfind(_X_MEMBER)
    return text if cut < 0 else text[:cut] + "}"


class JobTasks(msgspec.Struct):
    """The tasks of one job: by id, in id order (listing), active ones in creation order, counters."""

    by_id: TaskTable = field(default_factory=TaskTable)
    sorted_ids: list[str] = field(default_factory=list)
    pending: dict[str, None] = field(default_factory=dict)  # active task ids, in creation order
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TASK_STATES, 0))
    slot_counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TASK_STATES, 0))
    succeeded: list[int] = field(default_factory=lambda: [0, 0])  # tasks, slots
    failed: list[int] = field(default_factory=lambda: [0, 0])
    numeric: dict[int, list[str]] = field(default_factory=dict)  # integer-valued ids, for taskIdRanges
    # Lower-cased id -> id, for the ids that are not lower-case already (ids are case-insensitive).
    lowered: dict[str, str] = field(default_factory=dict)

    def find(self, task_id: str, keep: bool = True) -> Body | None:
        """The task with this id, compared without case as Batch does; with ``keep=False`` for reading only
        (see :meth:`TaskTable.peek`)."""
        stored = self.known_id(task_id)
        if stored is None:
            return None
        return self.by_id.get(stored) if keep else self.by_id.peek(stored)

    def known_id(self, task_id: str) -> str | None:
        """The stored spelling of this task id (compared without case), None for no such task."""
        if task_id in self.by_id:
            return task_id
        lowered = task_id.lower()
        stored = self.lowered.get(lowered, lowered)
        return stored if stored in self.by_id else None

    def _account(self, task: Body, sign: int) -> None:
        self._count(
            task["id"],
            task["state"],
            int(task.get("requiredSlots", 1)),
            task.get("executionInfo", {}).get("result") == "success",
            sign,
        )

    def _count(self, task_id: str, state: str, slots: int, succeeded: bool, sign: int) -> None:
        self.counts[state] += sign
        self.slot_counts[state] += sign * slots
        if state == "completed":
            outcome = self.succeeded if succeeded else self.failed
            outcome[0] += sign
            outcome[1] += sign * slots
        if state == "active":
            if sign > 0:
                self.pending[task_id] = None
            else:
                self.pending.pop(task_id, None)

    def add(self, task: Body) -> None:
        self._index(task["id"])
        self.by_id.put(task["id"], task)
        self._account(task, +1)

    def add_stored(self, task_id: str, text: str, state: str, slots: int, succeeded: bool) -> None:
        """A task read from the store, kept as its stored text (``state``, ``slots``, ``succeeded``: for
        the counters). Its id is appended to ``sorted_ids``: the loader sorts them once at the end."""
        self._index(task_id, append=True)
        self.by_id.put(task_id, text)
        self._count(task_id, state, slots, succeeded, +1)

    def _index(self, task_id: str, append: bool = False) -> None:
        lowered = task_id.lower()
        if lowered != task_id:
            self.lowered[lowered] = task_id
        if append:
            self.sorted_ids.append(task_id)
        else:
            bisect.insort(self.sorted_ids, task_id)
        if task_id.isdigit():
            self.numeric.setdefault(int(task_id), []).append(task_id)

    def remove(self, task_id: str) -> Body | None:
        task = self.by_id.pop(task_id)
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

    def after_stored(self, marker: str | None) -> Iterator[tuple[str, Body | str]]:
        """Tasks in id order after ``marker`` as held (see :meth:`TaskTable.stored`), for encoding pages."""
        start = 0 if marker is None else bisect.bisect_right(self.sorted_ids, marker)
        ids = self.sorted_ids
        for index in range(start, len(ids)):
            item = self.by_id.stored(ids[index])
            if item is not None:
                yield ids[index], item

    def after(self, marker: str | None) -> Iterator[tuple[str, Body]]:
        """Tasks in id order after ``marker``, for reading (see :meth:`TaskTable.peek`)."""
        start = 0 if marker is None else bisect.bisect_right(self.sorted_ids, marker)
        ids = self.sorted_ids
        for index in range(start, len(ids)):
            task = self.by_id.peek(ids[index])
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
            # Tasks stay their stored text; the counters take their state, slots and result from SQLite.
            for parent, key, text, state, slots, result in self.store.load_tasks():
                if state not in TASK_STATES:
                    raise StoreUnreadable(f"tasks {parent}/{key}: the stored state {state!r} is unknown")
                job_tasks = self.tasks.get(parent)
                if job_tasks is None:
                    job_tasks = self.tasks[parent] = JobTasks()
                slots = 1 if slots is None else int(slots)
                job_tasks.add_stored(key, text, state, slots, result == "success")
            for job_tasks in self.tasks.values():
                job_tasks.sorted_ids.sort()  # add_stored appends: one sort instead of an insort per task
            self._sequence = itertools.count(self.store.highest_task_sequence() + 1)
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
        if "_x" in task and next(reversed(task)) != "_x":
            task["_x"] = task.pop("_x")  # last, so that a page can leave it out of the text (public_json)
        text = self.store.put(Table.TASKS, job_id, task["id"], task)
        job_tasks = self.tasks.get(job_id)
        # A task that runs is changed again when it ends: it stays the live dict until then instead of being
        # decoded once more (as many as the nodes have slots).
        if job_tasks is not None and task.get("state") not in _UNDER_WAY:
            job_tasks.by_id.settle(task["id"], text)

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
