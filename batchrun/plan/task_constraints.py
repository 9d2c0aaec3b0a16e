"""A task's constraints: the one part of a task that changes in place (PUT), never a rerun.

Batch fills in what a task leaves out (``maxTaskRetryCount`` defaults to the job's), so desired and live
constraints are compared once both are filled in.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from batchrun.model import TaskSpec
from batchrun.plan.actions import Action, Change, Operation, Stage
from batchrun.plan.diff import DEFAULTS, diff_subset
from batchrun.plan.live import LiveTask

CONSTRAINT_KEYS = ("maxWallClockTime", "retentionTime", "maxTaskRetryCount")


def full_constraints(
    constraints: Mapping[str, Any] | None, job_constraints: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The task's constraints with what Batch fills in: maxTaskRetryCount defaults to the job's."""
    given = dict(constraints or {})
    defaults = {key: DEFAULTS[f"constraints.{key}"] for key in CONSTRAINT_KEYS}
    if job_constraints and "maxTaskRetryCount" in job_constraints:
        defaults["maxTaskRetryCount"] = job_constraints["maxTaskRetryCount"]
    return {key: given.get(key, defaults[key]) for key in CONSTRAINT_KEYS}


def constraints_filler(
    job_constraints: Mapping[str, Any],
) -> Callable[[Mapping[str, Any] | None], dict[str, Any]]:
    """:func:`full_constraints` under ``job_constraints``, worked out once per distinct constraints (a job's
    tasks mostly share a few): at 100,000 tasks the plan compares constraints twice per task. The dicts
    returned are shared: read them, never change them."""
    memo: dict[tuple[tuple[str, Any], ...], dict[str, Any]] = {}

    def fill(constraints: Mapping[str, Any] | None) -> dict[str, Any]:
        key = tuple(constraints.items()) if constraints else ()
        try:
            return memo[key]
        except KeyError:
            memo[key] = full_constraints(constraints, job_constraints)
            return memo[key]
        except TypeError:  # a value that cannot be a key (not a Batch constraint): no memo
            return full_constraints(constraints, job_constraints)

    return fill


def constraints_update(
    job_id: str,
    task: TaskSpec,
    live: LiveTask,
    filled: Callable[[Mapping[str, Any] | None], dict[str, Any]],
) -> Change | None:
    """The in-place update of a live task whose constraints differ from the manifest's (None: they agree)."""
    desired = filled(task.properties.get("constraints"))
    have = filled(live.constraints)
    if desired == have:  # the common case, without the field-by-field comparison (normalised durations)
        return None
    fields = diff_subset(desired, have, "constraints")
    if not fields:
        return None
    return Change(
        f"task/{job_id}/{task.id}",
        Action.UPDATE,
        tuple(fields),
        operations=(
            Operation(
                Stage.TASKS,
                "task.update_constraints",
                {"job": job_id, "id": task.id, "constraints": dict(desired)},
            ),
        ),
    )


def constraints_checker(
    job_constraints: Mapping[str, Any],
) -> Callable[[str, TaskSpec, LiveTask], Change | None]:
    """:func:`constraints_update` for the tasks of one job, each pair of (desired, live) constraints compared
    once: a job's tasks mostly share a few, and a plan of 100,000 tasks compares them all. A task whose
    constraints equal the task's before, against the same live ones (the listing shares equal ones), takes
    that task's answer without making the pair."""
    filled = constraints_filler(job_constraints)
    agree: dict[tuple[Any, Any], bool] = {}
    before: list[Any] = [None, None, False]  # the desired and live constraints of the task before, agreeing

    def check(job_id: str, task: TaskSpec, live: LiveTask) -> Change | None:
        desired, have = task.properties.get("constraints"), live.constraints
        if before[2] and have is before[1] and desired == before[0]:
            return None
        try:
            pair = (tuple(desired.items()) if desired else (), tuple(have.items()) if have else ())
            same = agree.get(pair)
        except TypeError:  # a value that cannot be a key (not a Batch constraint): no memo
            return constraints_update(job_id, task, live, filled)
        if not same:
            update = constraints_update(job_id, task, live, filled)
            same = agree[pair] = update is None
            if not same:
                before[2] = False
                return update
        before[:] = desired, have, True
        return None

    return check
