"""Decisions for a job's tasks (pure): which tasks must run, why, and how; which results are carried over.

A task must run when no result is known for its current digest (see :mod:`batchrun.plan.task_identity`): it is
new, its definition or the content of what it reads changed, a task upstream of it reruns, or a rerun is
forced. The latest outcome of each task comes from the live job when the task is there, else from the
workload's record of results, which outlives jobs. A task whose unchanged digest failed is not rerun unless
asked (``--rerun-failed``), so a deterministic failure does not loop in CI; tasks downstream of it wait.

How a task runs depends on its job: in a job that is being created (or replaced) every task to run is added;
in an active job a task already there is replaced (deleted and added again) and a missing one is added.
Dependencies on tasks that will not be in the job (their results are carried over) are satisfied, so they are
left out of the body sent to Batch. Constraints are the one thing that changes in place.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from enum import Enum
from typing import Any, NamedTuple

from batchrun.model import JobSpec, TaskSpec, task_ids
from batchrun.plan.actions import Action, Change, Operation, Stage, TaskChanges
from batchrun.plan.bodies import task_operation_args
from batchrun.plan.live import LiveTask, TakenOnce, TaskResult
from batchrun.plan.task_constraints import constraints_checker
from batchrun.plan.task_identity import TaskGraph, TaskIdentity, numeric_task_ids, parse_digest, task_key

RERUN_FAILED_FLAG = "--rerun-failed"


class Cause(str, Enum):
    """Why a task runs (the first six) or why it does not."""

    NEW = "new"
    DEFINITION = "definition changed"
    INPUT = "input changed"
    PACKAGE = "package changed"
    UPSTREAM = "upstream reruns"
    FORCED = "forced"
    WAITING = "waiting when its job was replaced"
    CURRENT = "current"
    FAILED = "failed"
    BLOCKED = "waits for a failed task"
    PENDING = "pending"


RUN_CAUSES = (
    Cause.NEW,
    Cause.DEFINITION,
    Cause.INPUT,
    Cause.PACKAGE,
    Cause.UPSTREAM,
    Cause.FORCED,
    Cause.WAITING,
)


@dataclass(frozen=True)
class TaskOptions:
    prune: bool = False
    rerun_failed: bool = False
    rerun: tuple[str, ...] = ()  # globs of task ids to run again whatever their state


@dataclass(frozen=True)
class ContentChanges:
    """What changes in what tasks read, for naming it in reasons (display only)."""

    blobs: Mapping[str, Sequence[str]] = field(default_factory=dict)  # input name -> blobs to upload
    packages: Mapping[str, str] = field(default_factory=dict)  # application name -> "1.0 -> 1.1"


def task_address(job_id: str, task_id: str) -> str:
    return f"task/{job_id}/{task_id}"


class _Status(NamedTuple):
    cause: Cause
    reason: str
    runs: bool  # the cause is one of RUN_CAUSES (a field: read once per task, never worked out again)


def _status(cause: Cause, reason: str) -> _Status:
    return _Status(cause, reason, cause in RUN_CAUSES)


# The statuses most tasks have, made once (a plan of 100,000 tasks decides 100,000 of them).
_NEW = _status(Cause.NEW, "new")
_CHANGED = _status(Cause.DEFINITION, "")  # the part that changed is named by the caller
_PENDING = _status(Cause.PENDING, "waiting or running")
_WAITING = _status(Cause.WAITING, "it had not run when its job was replaced")
_CURRENT = _status(Cause.CURRENT, "")
_CURRENT_EARLIER = _status(Cause.CURRENT, "succeeded in an earlier run")


@dataclass(frozen=True)
class TaskDecisions:
    changes: Sequence[Change]  # TaskChanges: the tasks kept as they are are not a Change each
    any_change: bool  # something is added, replaced, updated or deleted
    any_run: bool  # some task is added or replaced, so it must run
    carried: int = 0  # tasks whose current result comes from an earlier run
    # Each task's status in the manifest's order, when no task waits for another: deciding the same tasks
    # again for a replaced job reuses them, as the live tasks were taken while they were decided.
    statuses: tuple[_Status, ...] = ()


def _as_fresh(status: _Status) -> _Status:
    """A task's status in a job that is replaced, from its status in the live job (what _own_status gives
    with ``fresh``): a task that had not finished runs again, a success is carried over."""
    if status is _PENDING:
        return _WAITING
    if status is _CURRENT:
        return _CURRENT_EARLIER
    return status


def _first(items: Sequence[str], noun: str) -> str:
    if not items:
        return noun
    more = f" and {len(items) - 1} more" if len(items) > 1 else ""
    return f"{noun} {items[0]}{more}"


def _upstream_reason(upstream_runs: Sequence[str]) -> str:
    return _first(upstream_runs, "upstream") + (" reruns" if len(upstream_runs) == 1 else " rerun")


def _changed_reason(
    task: TaskSpec,
    parts: Sequence[str],
    upstream_runs: Sequence[str],
    changes: ContentChanges,
    prefixes: Mapping[str, str],
) -> _Status:
    """The one reason for a task whose digest changed: the first part that differs."""
    part = parts[0] if parts else "definition"
    if part == "definition":
        return _status(Cause.DEFINITION, "definition changed")
    if part == "inputs":
        blobs: list[str] = []
        for name in task.inputs:
            changed = changes.blobs.get(name, ())
            wanted = task.input_paths.get(name)
            if wanted:
                own = {prefixes.get(name, "") + path for path in wanted}
                blobs.extend(blob for blob in changed if blob in own)
            else:
                blobs.extend(changed)
        return _status(Cause.INPUT, _first(blobs, "input") + " changed" if blobs else "input content changed")
    if part == "packages":
        named = [f"{name} {text}" for name, text in sorted(changes.packages.items())]
        return _status(Cause.PACKAGE, _first(named, "package") if named else "package content changed")
    return _status(Cause.UPSTREAM, _upstream_reason(upstream_runs))


class _Known(NamedTuple):
    """What the statuses of a job's tasks are decided from."""

    graph: TaskGraph
    live: Mapping[str, LiveTask]
    results: Mapping[str, TaskResult]
    fresh: bool
    options: TaskOptions
    patterns: Sequence[re.Pattern[str]]  # options.rerun, compiled
    changes: ContentChanges
    prefixes: Mapping[str, str]


def _changed_part(
    key: str,
    task: TaskSpec,
    digest: str,
    known: _Known,
    runs_upstream: Sequence[str],
    observed: LiveTask | None,
) -> _Status:
    previous = observed.digest if observed is not None else known.results[key].digest
    parts = TaskIdentity(*digest.split("-")).differing(parse_digest(previous))
    return _changed_reason(task, parts, runs_upstream, known.changes, known.prefixes)


def _forced(task_id: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    return any(pattern.match(task_id) for pattern in patterns)


# key, task, digest (None for a new task: made with its body), status, live task
Decided = tuple[str, TaskSpec, str | None, _Status, LiveTask | None]


def _own_statuses(job: JobSpec, known: _Known) -> Iterator[Decided]:
    """(key, task, digest, status, live task) in the manifest's order for a job whose tasks wait for none:
    each status is the task's own, made as it is used, and each live task taken as it is decided (see
    :class:`TakenOnce`). A task neither live nor recorded is new whatever its digest, which is not made."""
    graph, fresh, options, patterns = known.graph, known.fresh, known.options, known.patterns
    live = known.live
    observe = live.take if isinstance(live, TakenOnce) else live.get
    digest_of, recorded = graph.digest_of, known.results.get
    for position, task in enumerate(job.tasks):  # each task read once: it may be made as it is read
        key = task_key(task.id)
        observed = observe(key)
        record = recorded(key)
        if observed is None and record is None:
            yield key, task, None, _NEW, None
            continue
        digest = digest_of(task, position)
        status = _own_status(task, digest, observed, record, fresh, options, patterns)
        if status is _CHANGED:  # say which part changed
            status = _changed_part(key, task, digest, known, (), observed)
        yield key, task, digest, status, observed


def _statuses(job: JobSpec, known: _Known) -> dict[str, _Status]:
    """Each task's status, deciding upstream before downstream."""
    graph, live, results = known.graph, known.live, known.results
    tasks = dict(zip(graph.keys, graph.tasks_of(job), strict=True))
    statuses: dict[str, _Status] = {}
    digests, all_upstream = graph.digests, graph.upstream
    for key in graph.order:
        task = tasks[key]
        upstream = all_upstream.get(key, ())
        runs_upstream = (
            [tasks[d].id for d in upstream if d in statuses and statuses[d].runs] if upstream else []
        )
        status = _own_status(
            task, digests[key], live.get(key), results.get(key), known.fresh, known.options, known.patterns
        )
        if not upstream:
            if status is _CHANGED:  # say which part changed
                status = _changed_part(key, task, digests[key], known, runs_upstream, live.get(key))
            statuses[key] = status
            continue
        if not status.runs and runs_upstream:
            status = _status(Cause.UPSTREAM, _upstream_reason(runs_upstream))
        elif status is _CHANGED:
            status = _changed_part(key, task, digests[key], known, runs_upstream, live.get(key))
        if status.runs:
            stuck = [
                tasks[d].id
                for d in upstream
                if d in statuses and statuses[d].cause in (Cause.FAILED, Cause.BLOCKED)
            ]
            if stuck:
                status = _status(
                    Cause.BLOCKED, f"waits for failed {stuck[0]} ({RERUN_FAILED_FLAG} reruns it)"
                )
        statuses[key] = status
    return statuses


def _own_status(
    task: TaskSpec,
    digest: str,
    live: LiveTask | None,
    record: TaskResult | None,
    fresh: bool,
    options: TaskOptions,
    patterns: Sequence[re.Pattern[str]],
) -> _Status:
    """The task's status from its own latest outcome.

    A changed digest comes back as DEFINITION with an empty reason: the caller names the part that changed.
    """
    if live is not None:
        previous, completed = live.digest, live.state.lower() == "completed"
        result = (live.result or ("success" if live.exit_code == 0 else "failure")) if completed else ""
        exit_code = live.exit_code
    elif record is not None:
        previous, completed, result, exit_code = record.digest, True, record.result, record.exit_code
    else:
        return _NEW
    if previous != digest:
        return _CHANGED
    if not completed:
        return _WAITING if fresh else _PENDING
    forced = bool(patterns) and _forced(task.id.lower(), patterns)
    if result == "success":
        if forced:
            return _status(Cause.FORCED, "forced (--rerun)")
        return _CURRENT_EARLIER if live is None or fresh else _CURRENT
    shown = f"exit {exit_code}" if exit_code is not None else "no exit code"
    if forced:
        return _status(Cause.FORCED, "forced (--rerun)")
    if options.rerun_failed:
        return _status(Cause.FORCED, f"failed before ({shown}); {RERUN_FAILED_FLAG}")
    return _status(Cause.FAILED, f"failed ({shown}); {RERUN_FAILED_FLAG} reruns it")


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
    known = _Known(
        graph, live, results, fresh, options, patterns, changes or ContentChanges(), prefixes or {}
    )
    decided: Iterable[Decided]
    in_job: set[str] = set()  # what a task to run may still depend on (only when a task depends on others)
    numeric: dict[int, str] = {}
    own: list[_Status] | None = None  # each task's own status, for deciding again (no task waits for another)
    all_new = False  # every task is new: added in one step, none read
    if graph.upstream:
        statuses = _statuses(job, known)
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
                None if status is _NEW else graph.digest_of(task, position),
                _as_fresh(status),
                None,
            )
            for position, (task, status) in enumerate(zip(job.tasks, earlier.statuses, strict=True))
        )
    elif fresh and earlier is None and not results and not live:
        # A job to create with nothing of it live or recorded: every task is new, decided without reading it.
        decided = ()
        own = [_NEW] * len(job.tasks)
        all_new = True
    else:  # no task depends on another: nothing to leave out of a body, statuses made as they are used
        decided = _own_statuses(job, known)
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
        result.add_new_each(_NEW.reason, _NEW.cause._value_)
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
        address = f"task/{job_id}/{task.id}"  # task_address, inline: once per task of the job
        observed = None if fresh else live_task
        if status.runs:
            any_run = True
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
        if status is _CURRENT_EARLIER:
            carried += 1
        if observed is not None and open_job and status.cause in kept_as_is:
            update = constraints_change(address, job_id, task, observed)
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
