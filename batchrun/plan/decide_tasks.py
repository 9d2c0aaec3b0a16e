"""Decisions for a job's tasks (pure): which tasks must run (:mod:`batchrun.plan.task_status` says why), how,
and which results are carried over.

How a task runs depends on its job: in a job that is being created (or replaced) every task to run is added;
in an active job a task already there is replaced (deleted and added again) and a missing one is added.
Dependencies on tasks that will not be in the job (their results are carried over) are satisfied, so they are
left out of the body sent to Batch. Constraints are the one thing that changes in place.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import msgspec
from msgspec.structs import replace

from batchrun.model import JobSpec, TaskSpec, task_ids
from batchrun.plan.actions import Action, Change, Operation, Stage, TaskChanges
from batchrun.plan.bodies import task_operation_args
from batchrun.plan.live import LiveTask, TakenOnce, TaskResult
from batchrun.plan.task_constraints import constraints_checker
from batchrun.plan.task_identity import TaskGraph, numeric_task_ids, task_key
from batchrun.plan.task_status import (
    CURRENT_EARLIER,
    NEW,
    Cause,
    ContentChanges,
    Decided,
    Known,
    Status,
    TaskOptions,
    as_fresh,
    own_statuses,
    statuses_in_order,
)


def task_address(job_id: str, task_id: str) -> str:
    return f"task/{job_id}/{task_id}"


class TaskDecisions(msgspec.Struct, frozen=True):
    changes: Sequence[Change]  # TaskChanges: the tasks kept as they are are not a Change each
    any_change: bool  # something is added, replaced, updated or deleted
    any_run: bool  # some task is added or replaced, so it must run
    carried: int = 0  # tasks whose current result comes from an earlier run
    # Each task's status in the manifest's order, when no task waits for another: deciding the same tasks
    # again for a replaced job reuses them, as the live tasks were taken while they were decided.
    statuses: tuple[Status, ...] = ()


def _without_satisfied(task: TaskSpec, in_job: set[str], numeric: Mapping[int, str]) -> TaskSpec:
    """``task`` depending only on tasks that will be in its job: the others' results are already current."""
    spec = task.properties.get("dependsOn")
    if not spec:
        return task
    ids = [str(i) for i in spec.get("taskIds") or () if str(i).lower() in in_job]
    ranges: list[dict[str, int]] = []
    for span in spec.get("taskIdRanges") or ():
        start, end = int(span["start"]), int(span["end"])
        members = [numeric[n] for n in range(start, end + 1) if n in numeric] if end - start < 10**6 else []
        kept = [member for member in members if member in in_job]
        if len(kept) == len(members):
            ranges.append({"start": start, "end": end})
        else:
            ids.extend(kept)
    if len(ids) == len(spec.get("taskIds") or ()) and len(ranges) == len(spec.get("taskIdRanges") or ()):
        return task
    properties = {key: value for key, value in task.properties.items() if key != "dependsOn"}
    depends: dict[str, Any] = {}
    if ids:
        depends["taskIds"] = ids
    if ranges:
        depends["taskIdRanges"] = ranges
    if depends:
        properties["dependsOn"] = depends
    return replace(task, properties=properties)


def _add(task: TaskSpec, digest: str) -> Operation:
    return Operation(Stage.TASKS, "task.add", task_operation_args(task, digest))


def decide_tasks(
    job: JobSpec,
    graph: TaskGraph,
    live: Mapping[str, LiveTask],
    results: Mapping[str, TaskResult],
    fresh: bool,
    options: TaskOptions,
    changes: ContentChanges | None = None,
    prefixes: Mapping[str, str] | None = None,
    open_job: bool = True,
    earlier: TaskDecisions | None = None,
) -> TaskDecisions:
    """``live`` and ``results`` are keyed by lower-cased task id (Batch task ids are case-insensitive).

    ``fresh``: the job is created or replaced, so every task to run is added to an empty job.
    ``prefixes``: each storage input's blob prefix, to name changed files in reasons.
    ``open_job``: the live job still runs tasks (constraints of a completed job's tasks are left as they are).
    ``earlier``: the decisions of these tasks against the live job, which is now to be replaced (``fresh``):
    their statuses are reused, the live tasks being taken by then when ``live`` is :class:`TakenOnce`.
    """
    patterns = [re.compile(fnmatch.translate(glob.lower())) for glob in options.rerun]
    known = Known(graph, live, results, fresh, options, patterns, changes or ContentChanges(), prefixes or {})
    decided: Iterable[Decided]
    in_job: set[str] = set()  # what a task to run may still depend on (only when a task depends on others)
    numeric: dict[int, str] = {}
    own: list[Status] | None = None  # each task's own status, for deciding again (no task waits for another)
    all_new = False  # every task is new: added in one step, none read
    if graph.upstream:
        statuses = statuses_in_order(job, known)
        runs = {key for key, status in statuses.items() if status.runs}
        if runs:
            in_job = runs | set(live) if not fresh else runs
            numeric = numeric_task_ids(task_ids(graph.tasks_of(job)))
        decided = (
            (key, task, graph.digests.at(position), statuses[key], live.get(key))
            for position, (key, task) in enumerate(zip(graph.keys, graph.tasks_of(job), strict=True))
        )
    elif earlier is not None and fresh and earlier.statuses:
        decided = (
            (
                task_key(task.id),
                task,
                None if status is NEW else graph.digest_of(task, position),
                as_fresh(status),
                None,
            )
            for position, (task, status) in enumerate(zip(job.tasks, earlier.statuses, strict=True))
        )
    elif fresh and earlier is None and not results and not live:
        # A job to create with nothing of it live or recorded: every task is new, decided without reading it.
        decided = ()
        own = [NEW] * len(job.tasks)
        all_new = True
    else:  # no task depends on another: nothing to leave out of a body, statuses made as they are used
        decided = own_statuses(job, known)
        own = []
    any_run = False
    changed_in_place = False  # a constraints update or a deletion
    constraints_change = constraints_checker(job.properties.get("constraints") or {})
    job_id, tasks = job.id, job.tasks

    def new_task(position: int, reason: str, cause: str) -> Change:
        task = tasks[position]
        add = _add(_without_satisfied(task, in_job, numeric), graph.digest_of(task, position))
        return Change(
            f"task/{job_id}/{task.id}", Action.CREATE, reason=reason, operations=(add,), cause=cause
        )

    result = TaskChanges(job_id, tasks, new_task)
    if all_new:
        result.add_new_each(NEW.reason, NEW.cause._value_)
        any_run = bool(job.tasks)
    carried = 0
    kept_as_is = (Cause.CURRENT, Cause.PENDING, Cause.FAILED)  # a live task whose constraints may change
    for position, (_key, task, digest, status, live_task) in enumerate(decided):
        if own is not None:
            own.append(status)
        if digest is None:  # new: its digest and body are made when its change is read
            any_run = True
            result.add_new(position, status.reason, status.cause._value_)
            continue
        observed = None if fresh else live_task
        if status.runs:
            any_run = True
            address = f"task/{job_id}/{task.id}"  # task_address, inline
            add = _add(_without_satisfied(task, in_job, numeric), digest)
            if observed is None:
                result.add(
                    Change(
                        address,
                        Action.CREATE,
                        reason=status.reason,
                        operations=(add,),
                        cause=status.cause.value,
                    )
                )
            else:
                delete = Operation(Stage.TASK_DELETE, "task.delete", {"job": job.id, "id": task.id})
                result.add(
                    Change(
                        address,
                        Action.REPLACE,
                        reason=status.reason,
                        operations=(delete, add),
                        cause=status.cause.value,
                    )
                )
            continue
        if status is CURRENT_EARLIER:
            carried += 1
        if observed is not None and open_job and status.cause in kept_as_is:
            update = constraints_change(job_id, task, observed)
            if update is not None:
                result.add(update)
                changed_in_place = True
                continue
        result.keep(position, status.reason, status.cause._value_)
    if not fresh:
        # Not set(live) - desired: a set of every live id is megabytes at 100,000 tasks, for the few orphans.
        orphans: list[str]
        if own is not None and isinstance(live, TakenOnce):
            # Every task of the manifest was taken as it was decided: what is left are the orphans, and a task
            # the listing brought twice, told apart in one pass over the manifest's ids when anything is left.
            left = set(live)
            orphans = sorted(left.difference(graph.keys)) if left else []
        else:
            desired = graph.digests
            orphans = sorted(key for key in live if key not in desired)
        for key in orphans:
            address = task_address(job.id, key)
            if options.prune:
                operation = Operation(Stage.TASK_DELETE, "task.delete", {"job": job.id, "id": key})
                result.add(
                    Change(address, Action.DELETE, reason="not in the manifest", operations=(operation,))
                )
                changed_in_place = True
            else:
                result.add(
                    Change(address, Action.NOOP, reason="not in the manifest; kept (--prune deletes it)")
                )
    return TaskDecisions(result, any_run or changed_in_place, any_run, carried, tuple(own) if own else ())
