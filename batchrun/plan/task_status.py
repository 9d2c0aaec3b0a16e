"""Why each of a job's tasks runs or not (pure): its status, from its digest, its latest outcome and the
options.

A task must run when no result is known for its current digest (see :mod:`batchrun.plan.task_identity`): it is
new, its definition or the content of what it reads changed, a task upstream of it reruns, or a rerun is
forced. The latest outcome of each task comes from the live job when the task is there, else from the
workload's record of results, which outlives jobs. A task whose unchanged digest failed is not rerun unless
asked (``--rerun-failed``), so a deterministic failure does not loop in CI; tasks downstream of it wait.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from enum import Enum
from typing import NamedTuple

import msgspec
from msgspec import field

from batchrun.model import JobSpec, TaskSpec
from batchrun.plan.live import LiveTask, TakenOnce, TaskResult
from batchrun.plan.task_identity import TaskGraph, TaskIdentity, parse_digest, task_key

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


class TaskOptions(msgspec.Struct, frozen=True):
    prune: bool = False
    rerun_failed: bool = False
    rerun: tuple[str, ...] = ()  # globs of task ids to run again whatever their state


class ContentChanges(msgspec.Struct, frozen=True):
    """What changes in what tasks read, for naming it in reasons (display only)."""

    blobs: Mapping[str, Sequence[str]] = field(default_factory=dict)  # input name -> blobs to upload
    packages: Mapping[str, str] = field(default_factory=dict)  # application name -> "1.0 -> 1.1"


class Status(NamedTuple):
    cause: Cause
    reason: str
    runs: bool  # the cause is one of RUN_CAUSES (a field: read once per task, never worked out again)


def _status(cause: Cause, reason: str) -> Status:
    return Status(cause, reason, cause in RUN_CAUSES)


# The statuses most tasks have, made once (a plan of 100,000 tasks decides 100,000 of them).
NEW = _status(Cause.NEW, "new")
CHANGED = _status(Cause.DEFINITION, "")  # the part that changed is named by the caller
PENDING = _status(Cause.PENDING, "waiting or running")
WAITING = _status(Cause.WAITING, "it had not run when its job was replaced")
CURRENT = _status(Cause.CURRENT, "")
CURRENT_EARLIER = _status(Cause.CURRENT, "succeeded in an earlier run")


def as_fresh(status: Status) -> Status:
    """A task's status in a job that is replaced, from its status in the live job (what _own_status gives
    with ``fresh``): a task that had not finished runs again, a success is carried over."""
    if status is PENDING:
        return WAITING
    if status is CURRENT:
        return CURRENT_EARLIER
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
) -> Status:
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


class Known(NamedTuple):
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
    known: Known,
    runs_upstream: Sequence[str],
    observed: LiveTask | None,
) -> Status:
    previous = observed.digest if observed is not None else known.results[key].digest
    parts = TaskIdentity(*digest.split("-")).differing(parse_digest(previous))
    return _changed_reason(task, parts, runs_upstream, known.changes, known.prefixes)


def _forced(task_id: str, patterns: Sequence[re.Pattern[str]]) -> bool:
    return any(pattern.match(task_id) for pattern in patterns)


# key, task, digest (None for a new task: made with its body), status, live task
Decided = tuple[str, TaskSpec, str | None, Status, LiveTask | None]


def own_statuses(job: JobSpec, known: Known) -> Iterator[Decided]:
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
            yield key, task, None, NEW, None
            continue
        digest = digest_of(task, position)
        status = _own_status(task, digest, observed, record, fresh, options, patterns)
        if status is CHANGED:  # say which part changed
            status = _changed_part(key, task, digest, known, (), observed)
        yield key, task, digest, status, observed


def statuses_in_order(job: JobSpec, known: Known) -> dict[str, Status]:
    """Each task's status, deciding upstream before downstream."""
    graph, live, results = known.graph, known.live, known.results
    tasks = dict(zip(graph.keys, graph.tasks_of(job), strict=True))
    statuses: dict[str, Status] = {}
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
            if status is CHANGED:  # say which part changed
                status = _changed_part(key, task, digests[key], known, runs_upstream, live.get(key))
            statuses[key] = status
            continue
        if not status.runs and runs_upstream:
            status = _status(Cause.UPSTREAM, _upstream_reason(runs_upstream))
        elif status is CHANGED:
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
) -> Status:
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
        return NEW
    if previous != digest:
        return CHANGED
    if not completed:
        return WAITING if fresh else PENDING
    forced = bool(patterns) and _forced(task.id.lower(), patterns)
    if result == "success":
        if forced:
            return _status(Cause.FORCED, "forced (--rerun)")
        return CURRENT_EARLIER if live is None or fresh else CURRENT
    shown = f"exit {exit_code}" if exit_code is not None else "no exit code"
    if forced:
        return _status(Cause.FORCED, "forced (--rerun)")
    if options.rerun_failed:
        return _status(Cause.FORCED, f"failed before ({shown}); {RERUN_FAILED_FLAG}")
    return _status(Cause.FAILED, f"failed ({shown}); {RERUN_FAILED_FLAG} reruns it")
