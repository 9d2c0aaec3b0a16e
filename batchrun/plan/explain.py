"""Field-level detail for the first few replaced tasks (display only).

Change detection compares task digests, which say *that* a task changed but not *what*. For the few tasks a
text plan shows, the live task bodies are read and compared field by field, so the plan prints e.g.
``commandLine: "echo a" -> "echo b"``. The decisions and operations stay exactly as they were.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from msgspec.structs import replace

from batchrun.model import TaskSpec
from batchrun.plan.actions import Action, Change, FieldChange, Plan, held, mapped
from batchrun.plan.diff import diff_subset
from batchrun.plan.live import TASK_DIGEST_ENV

EXPLAINED_TASKS = 5


def tasks_to_explain(plan: Plan, limit: int = EXPLAINED_TASKS) -> list[str]:
    """Ids of the first ``limit`` tasks that run because their definition changed (live body differs); none
    when ``limit`` is not positive."""
    ids: list[str] = []
    if limit <= 0:
        return ids
    for c in held(plan.changes):  # a new task is not made for this: it has no live body
        # The rare conditions first: most changes of a plan that adds tasks are new tasks.
        if (c.cause == "definition changed" or (c.action is Action.REPLACE and not c.cause)) and c.runs:
            ids.append(c.address.split("/", 2)[2])
            if len(ids) == limit:
                break
    return ids


def task_fields(task: TaskSpec, live: Mapping[str, Any]) -> list[FieldChange]:
    desired = {k: v for k, v in task.properties.items() if k not in ("constraints", "environmentSettings")}
    fields = diff_subset(desired, live)
    wanted_env = list(task.properties.get("environmentSettings") or [])
    live_env = [e for e in live.get("environmentSettings") or [] if e.get("name") != TASK_DIGEST_ENV]
    if wanted_env != live_env:
        fields.append(FieldChange("environmentSettings", live_env, wanted_env))
    return [FieldChange(f.path, f.before, f.after, True) for f in fields]


def explain(plan: Plan, tasks: Mapping[str, TaskSpec], live_bodies: Mapping[str, Mapping[str, Any]]) -> Plan:
    """``plan`` with field-level changes on tasks to run whose live body is given (by lower-cased id)."""

    def explained(change: Change) -> Change:
        task_id = change.address.split("/", 2)[2].lower() if change.kind == "task" else ""
        if change.runs and task_id in live_bodies and task_id in tasks:
            fields = task_fields(tasks[task_id], live_bodies[task_id])
            if fields:
                return replace(change, fields=tuple(fields))
        return change

    # A task kept as it is does not run; a new task has no live body.
    return replace(plan, changes=mapped(plan.changes, explained, new_tasks=False))
