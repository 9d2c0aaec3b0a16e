"""Decisions for a job's tasks (pure): add missing, replace changed, PUT constraints, prune extra.

A task's definition is compared through its ``BATCHRUN_TASK_DIGEST`` (see :mod:`batchrun.plan.bodies`), so
change detection needs only ``id, state, environmentSettings, constraints`` of each live task. Constraints are
compared by value with the service defaults filled in, because they are the one thing changeable in place.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from batchrun.model import TaskSpec
from batchrun.plan.actions import Action, Change, FieldChange, InputBinding, Operation, Stage
from batchrun.plan.bodies import task_digest, task_operation_args
from batchrun.plan.diff import DEFAULTS, diff_subset
from batchrun.plan.live import LiveTask

CONSTRAINT_KEYS = ("maxWallClockTime", "retentionTime", "maxTaskRetryCount")


def task_address(job_id: str, task_id: str) -> str:
    return f"task/{job_id}/{task_id}"


def full_constraints(
    constraints: Mapping[str, Any] | None, job_constraints: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The task's constraints with what Batch fills in: maxTaskRetryCount defaults to the job's."""
    given = dict(constraints or {})
    defaults = {key: DEFAULTS[f"constraints.{key}"] for key in CONSTRAINT_KEYS}
    if job_constraints and "maxTaskRetryCount" in job_constraints:
        defaults["maxTaskRetryCount"] = job_constraints["maxTaskRetryCount"]
    return {key: given.get(key, defaults[key]) for key in CONSTRAINT_KEYS}


@dataclass(frozen=True)
class TaskDecisions:
    changes: tuple[Change, ...]
    any_change: bool  # something is added, replaced, updated or deleted
    any_run: bool  # some task is added or replaced, so it must run


def decide_task(
    job_id: str,
    task: TaskSpec,
    digest: str,
    live: LiveTask | None,
    fresh: bool,
    job_constraints: Mapping[str, Any] | None = None,
) -> Change:
    address = task_address(job_id, task.id)
    add = Operation(Stage.TASKS, "task.add", task_operation_args(task, digest))
    if live is None or fresh:
        return Change(address, Action.CREATE, operations=(add,))
    if live.digest != digest:
        before = live.digest[:12] if live.digest else "unknown (not created by batchrun)"
        return Change(
            address,
            Action.REPLACE,
            (FieldChange("definition", before, digest[:12], True),),
            reason="the definition changed; only constraints change in place, so the task runs again",
            operations=(Operation(Stage.TASK_DELETE, "task.delete", {"job": job_id, "id": task.id}), add),
        )
    desired = full_constraints(task.properties.get("constraints"), job_constraints)
    fields = diff_subset(desired, full_constraints(live.constraints, job_constraints), "constraints")
    if not fields:
        return Change(address, Action.NOOP)
    return Change(
        address,
        Action.UPDATE,
        tuple(fields),
        operations=(
            Operation(
                Stage.TASKS, "task.update_constraints", {"job": job_id, "id": task.id, "constraints": desired}
            ),
        ),
    )


def decide_tasks(
    job_id: str,
    tasks: Iterable[TaskSpec],
    bindings: Mapping[str, InputBinding],
    outputs_container: str | None,
    live: Mapping[str, LiveTask],
    fresh: bool,
    prune: bool,
    job_constraints: Mapping[str, Any] | None = None,
) -> TaskDecisions:
    """``live`` is keyed by lower-cased task id (Batch task ids are case-insensitive)."""
    changes: list[Change] = []
    seen: set[str] = set()
    for task in tasks:
        key = task.id.lower()
        seen.add(key)
        digest = task_digest(task, bindings, outputs_container)
        changes.append(decide_task(job_id, task, digest, live.get(key), fresh, job_constraints))
    if not fresh:
        for key in sorted(set(live) - seen):
            address = task_address(job_id, key)
            if prune:
                operation = Operation(Stage.TASK_DELETE, "task.delete", {"job": job_id, "id": key})
                changes.append(
                    Change(address, Action.DELETE, reason="not in the manifest", operations=(operation,))
                )
            else:
                changes.append(
                    Change(address, Action.NOOP, reason="not in the manifest; kept (--prune deletes it)")
                )
    any_change = any(change.action is not Action.NOOP for change in changes)
    any_run = any(change.action in (Action.CREATE, Action.REPLACE) for change in changes)
    return TaskDecisions(tuple(changes), any_change, any_run)
