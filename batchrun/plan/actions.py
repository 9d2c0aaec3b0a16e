"""The plan as pure data: one :class:`Change` per resource address, with the operations that carry it out.

A plan serialises to JSON and back without loss (:mod:`batchrun.plan.plan_json`). It never holds a secret:
task bodies reference storage inputs and the outputs container by name, and the executor turns those names
into SAS URLs at apply time (generated SAS must never count as a change, nor be printed).

``Change.reason`` and ``FieldChange`` are for display; the executor reads only ``Change.operations``.
"""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from enum import Enum
from itertools import chain
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import field

from batchrun.model import task_id_at
from batchrun.model.by_position import ByPosition, Joined, Made

if TYPE_CHECKING:
    from batchrun.model import TaskSpec


class Action(str, Enum):
    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    BLOCKED = "blocked"


class Stage(int, Enum):
    """Dependency order of operations: storage and packages -> pool -> job -> tasks; deletes in reverse."""

    STORAGE = 10
    PACKAGES = 20
    RESULTS = 25  # the record of results is saved before any task or job that holds results is deleted
    TASK_DELETE = 30
    JOB_DELETE = 40
    POOL_DELETE = 50
    POOL = 60
    JOB = 70
    TASKS = 80
    JOB_FINAL = 90
    ORPHAN_POOL_DELETE = 92  # a pool no longer in the manifest goes last, once jobs have moved off it
    CONTAINER_DELETE = 95


class FieldChange(msgspec.Struct, frozen=True):
    """One field's before -> after (display only); ``forces_replacement`` marks what causes a replace."""

    path: str
    before: Any
    after: Any
    forces_replacement: bool = False


class Operation(msgspec.Struct, frozen=True):
    """One call the executor makes. ``name`` is e.g. ``pool.resize``; ``args`` is JSON-serialisable data."""

    stage: Stage
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


class Change(msgspec.Struct, frozen=True):
    address: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    reason: str = ""  # why (display only)
    unblock: str = ""  # for blocked: the flag or edit that would unblock it
    operations: tuple[Operation, ...] = ()
    cause: str = ""  # a task's reason as a category (see batchrun.plan.decide_tasks.Cause), for counting

    @property
    def runs(self) -> bool:
        """A task change that makes the task run (again)."""
        return self.action in (Action.CREATE, Action.REPLACE) and self.kind == "task"

    @property
    def kind(self) -> str:
        return self.address.split("/", 1)[0]


class TaskChanges(ByPosition[Change]):
    """A job's task changes in the order they were decided. A task kept as it is (a no-op and its reason) is
    held as one number, its position in the job's tasks and its reason's, and made into a Change only when
    read: a plan of 100,000 unchanged tasks holds no 100,000 Change objects.

    A new task (nothing of it is live or recorded) is held the same way when the job's decisions give
    ``new_task``, which makes its change (a create whose one operation is ``task.add``) from its position:
    a fresh apply makes each body once, on the thread that sends it (:meth:`new_tasks`), instead of every
    body before the pool is created."""

    def __init__(
        self,
        job_id: str,
        tasks: Sequence[TaskSpec],
        new_task: Callable[[int, str, str], Change] | None = None,
    ) -> None:
        self._job_id = job_id
        self._tasks = tasks
        self._new_task = new_task
        # position << 9 | 1 << 8 | reason number for a new task, position << 9 | reason number for a task
        # kept as it is, or ~index into _others for a change held whole
        self._entries = array("q")
        self._others: list[Change] = []
        self._reasons: list[tuple[str, str]] = []  # (reason, cause) by number
        self._numbers: dict[tuple[str, str], int] = {}
        self._new = array("q")  # the positions in _entries of the new tasks

    def add(self, change: Change) -> None:
        self._entries.append(~len(self._others))
        self._others.append(change)

    def keep(self, position: int, reason: str, cause: str) -> None:
        """The task at ``position`` of the job's tasks is kept as it is, for ``reason``."""
        self._number(position, reason, cause, self._kept, 0)

    def add_new(self, position: int, reason: str, cause: str) -> None:
        """The task at ``position`` is added, new: its change is made by ``new_task`` when read."""
        if self._new_task is None:
            raise ValueError(f"job {self._job_id}'s task changes were made without a maker of new tasks")
        self._number(position, reason, cause, self._made_new, _NEW_TASK)

    def add_new_each(self, reason: str, cause: str) -> None:
        """Every task of the job is added, new, for ``reason`` (their changes made when read), in one step:
        the first changes these task changes hold."""
        if self._entries:
            raise ValueError(f"job {self._job_id}'s task changes hold changes already")
        if not self._tasks:
            return
        self.add_new(0, reason, cause)  # the reason numbered, or every task held whole past 256 reasons
        if self._entries[-1] < 0:
            for position in range(1, len(self._tasks)):
                self.add_new(position, reason, cause)
            return
        entry, start = self._entries[-1], len(self._entries)
        self._entries.extend(range(entry + (1 << 9), entry + (len(self._tasks) << 9), 1 << 9))
        self._new.extend(range(start, len(self._entries)))

    def _number(
        self,
        position: int,
        reason: str,
        cause: str,
        whole: Callable[[int, tuple[str, str]], Change],
        kind: int,
    ) -> None:
        if not 0 <= position < len(self._tasks):
            raise IndexError(
                f"task position {position} is not in job {self._job_id}'s {len(self._tasks)} tasks"
            )
        number = self._numbers.get((reason, cause))
        if number is None:
            if len(self._reasons) == 256:  # more reasons than a byte tells apart (exit codes): held whole
                self.add(whole(position, (reason, cause)))
                return
            number = self._numbers[(reason, cause)] = len(self._reasons)
            self._reasons.append((reason, cause))
        if kind:
            self._new.append(len(self._entries))
        self._entries.append(position << 9 | kind | number)

    def _kept(self, position: int, why: tuple[str, str]) -> Change:
        address = f"task/{self._job_id}/{task_id_at(self._tasks, position)}"
        return Change(address, Action.NOOP, reason=why[0], cause=why[1])

    def _made_new(self, position: int, why: tuple[str, str]) -> Change:
        assert self._new_task is not None  # add_new refuses a new task without it
        return self._new_task(position, *why)

    def _made(self, entry: int) -> Change:
        if entry < 0:
            return self._others[~entry]
        why = self._reasons[entry & 0xFF]
        if entry & _NEW_TASK:
            return self._made_new(entry >> 9, why)
        return self._kept(entry >> 9, why)

    @property
    def job_id(self) -> str:
        return self._job_id

    def acting(self) -> Iterator[Change]:
        """The changes other than the tasks kept as they are, in order (a new task's made as it is read)."""
        if not self._new:
            return iter(self._others)
        return (self._made(entry) for entry in self._entries if entry < 0 or entry & _NEW_TASK)

    def held(self) -> Iterator[Change]:
        """The changes held whole, in order: every change but the tasks kept and the new tasks."""
        return iter(self._others)

    def new_tasks(self) -> Sequence[Change]:
        """The new tasks' changes in order, each made when read (a create with one ``task.add``)."""
        entries, new = self._entries, self._new
        return Made(len(new), lambda position: self._made(entries[new[position]]))

    def new_task_adds(self) -> Sequence[Mapping[str, Any]]:
        """The arguments of the new tasks' ``task.add``, in order, each made when read (what an apply sends;
        :meth:`new_tasks` without a lookup per task through it)."""
        entries, new = self._entries, self._new
        return Made(len(new), lambda position: self._made(entries[new[position]]).operations[0].args)

    def walk(self) -> Iterator[tuple[Change | None, int, str, str]]:
        """Each change in order, to be shown, without making the kept tasks' changes: ``(change, -1, "", "")``
        for a change held whole, or a new task's as shown (a create, its operations left out: its body is
        made only to be sent); ``(None, position, reason, cause)`` for a task kept as it is (its change:
        :meth:`kept_change`). A plan's text counts 100,000 kept tasks this way and shows a few."""
        others, reasons = self._others, self._reasons
        for entry in self._entries:
            if entry < 0:
                yield others[~entry], -1, "", ""
            elif entry & _NEW_TASK:
                reason, cause = reasons[entry & 0xFF]
                address = f"task/{self._job_id}/{task_id_at(self._tasks, entry >> 9)}"
                yield Change(address, Action.CREATE, reason=reason, cause=cause), -1, "", ""
            else:
                reason, cause = reasons[entry & 0xFF]
                yield None, entry >> 9, reason, cause

    def kept_change(self, position: int, reason: str, cause: str) -> Change:
        """The change of the task at ``position`` kept as it is (as :meth:`walk` gave it)."""
        return self._kept(position, (reason, cause))

    def mapped(self, change: Callable[[Change], Change], new_tasks: bool = True) -> TaskChanges:
        """A copy with ``change`` applied to each change but the tasks kept. The new tasks are made now and
        held whole (``change`` may make them something else, blocked say), or with ``new_tasks`` false
        left as they are (``change`` leaves them so)."""
        copy = TaskChanges(self._job_id, self._tasks, self._new_task)
        copy._reasons, copy._numbers = list(self._reasons), dict(self._numbers)
        for entry in self._entries:
            if entry < 0 or (entry & _NEW_TASK and new_tasks):
                copy.add(change(self._made(entry)))
            else:
                if entry & _NEW_TASK:
                    copy._new.append(len(copy._entries))
                copy._entries.append(entry)
        return copy

    def __len__(self) -> int:
        return len(self._entries)

    def __iter__(self) -> Iterator[Change]:
        return map(self._made, self._entries)

    def _at(self, position: int) -> Change:
        return self._made(self._entries[position])


_NEW_TASK = 1 << 8  # the bit of a TaskChanges entry that marks a new task


def acting(changes: Iterable[Change]) -> Iterable[Change]:
    """The changes other than tasks kept as they are (every change of a plain sequence)."""
    if isinstance(changes, (Changes, TaskChanges)):
        return changes.acting()
    return changes


def held(changes: Iterable[Change]) -> Iterable[Change]:
    """The changes held whole: those that act but a plan's new tasks (:meth:`TaskChanges.new_tasks`)."""
    if isinstance(changes, (Changes, TaskChanges)):
        return changes.held()
    return changes


def new_task_count(changes: Sequence[Change]) -> int:
    """How many new tasks ``changes`` make only when read (each a create)."""
    if isinstance(changes, TaskChanges):
        return len(changes.new_tasks())
    if isinstance(changes, Changes):
        return sum(new_task_count(part) for part in changes.parts)
    return 0


def by_part(changes: Sequence[Change]) -> Iterator[Change | TaskChanges]:
    """The changes in order, each job's task changes as one :class:`TaskChanges` (read with ``walk``)."""
    if isinstance(changes, TaskChanges):
        yield changes
    elif isinstance(changes, Changes):
        for part in changes.parts:
            yield from by_part(part)
    else:
        yield from changes


def mapped(
    changes: Sequence[Change], change: Callable[[Change], Change], new_tasks: bool = True
) -> Sequence[Change]:
    """``changes`` with ``change`` applied to each but the tasks kept as they are (a kept task is a no-op
    that ``change`` must leave as it is), without making the kept tasks' changes; with ``new_tasks`` false,
    nor the new tasks' (``change`` leaves a new task as it is)."""
    if isinstance(changes, (Changes, TaskChanges)):
        return changes.mapped(change, new_tasks)
    return tuple(map(change, changes))


class Changes(Joined[Change]):
    """A plan's changes, read in order from parts (a job's :class:`TaskChanges` among them) without copying
    them into one tuple; equal to any sequence of the same changes."""

    def acting(self) -> Iterator[Change]:
        return chain.from_iterable(acting(part) for part in self.parts)

    def held(self) -> Iterator[Change]:
        return chain.from_iterable(held(part) for part in self.parts)

    def mapped(self, change: Callable[[Change], Change], new_tasks: bool = True) -> Changes:
        return Changes(mapped(part, change, new_tasks) for part in self.parts)

    def __repr__(self) -> str:
        return f"Changes({list(self)!r})"


class InputBinding(msgspec.Struct, frozen=True):
    """Where a storage input lives, so task bodies can reference it by name."""

    name: str
    container: str
    prefix: str


class Plan(msgspec.Struct, frozen=True):
    """Everything ``apply`` needs: ordered changes plus the storage bindings used to build task SAS URLs."""

    workload: str
    target: str  # the target line this plan was made against (no secrets)
    changes: Sequence[Change]  # a tuple, or Changes (as make_plan builds it)
    inputs: tuple[InputBinding, ...] = ()
    outputs_container: str | None = None
    sas_expiry_seconds: int = 0
    job_id: str | None = None

    @property
    def has_changes(self) -> bool:
        return new_task_count(self.changes) > 0 or any(
            change.action is not Action.NOOP for change in held(self.changes)
        )

    @property
    def blocked(self) -> tuple[Change, ...]:
        """The blocked changes (a new task is never blocked: its job's block makes it a change held whole)."""
        return tuple(change for change in held(self.changes) if change.action is Action.BLOCKED)

    def counts(self) -> dict[str, int]:
        result = {action.value: 0 for action in Action}
        seen = new_task_count(self.changes)  # the new tasks, each a create, counted without making them
        result[Action.CREATE.value] += seen
        for change in held(self.changes):
            result[change.action.value] += 1
            seen += 1
        result[Action.NOOP.value] += len(self.changes) - seen  # the tasks kept as they are
        return result
