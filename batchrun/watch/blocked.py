"""Tasks that can never run: active, behind a dependency that failed and blocks its dependents (pure).

Batch keeps such a task ``active`` forever (``dependencyAction: block``, the default for a failure), so a job
whose remaining tasks are all of this kind is finished for ``wait``: it exits 3 and names them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec


class BlockedTask(msgspec.Struct, frozen=True):
    id: str
    blocked_by: str  # the failed task at the root of the chain


def _dependency_action(task: Mapping[str, Any]) -> str:
    """What a completed task's outcome does to its dependents: ``satisfy`` or ``block``."""
    exit_code = task.get("exitCode")
    conditions = task.get("exitConditions") or {}
    for entry in conditions.get("exitCodes") or ():
        if exit_code is not None and entry.get("code") == exit_code:
            return str((entry.get("exitOptions") or {}).get("dependencyAction") or "block").lower()
    for entry in conditions.get("exitCodeRanges") or ():
        if exit_code is not None and int(entry.get("start", 0)) <= exit_code <= int(entry.get("end", -1)):
            return str((entry.get("exitOptions") or {}).get("dependencyAction") or "block").lower()
    default = (conditions.get("default") or {}).get("dependencyAction")
    return str(default or "block").lower()


def _dependencies(task: Mapping[str, Any], numeric: Mapping[int, str]) -> list[str]:
    spec = task.get("dependsOn") or {}
    found = [str(i).lower() for i in spec.get("taskIds") or ()]
    for span in spec.get("taskIdRanges") or ():
        start, end = int(span.get("start", 0)), int(span.get("end", -1))
        found.extend(task_id for number, task_id in numeric.items() if start <= number <= end)
    return found


def blocked_tasks(tasks: Iterable[Mapping[str, Any]]) -> list[BlockedTask]:
    """``tasks``: ``{id, state, dependsOn, result, exitCode, exitConditions}`` of every task of a job."""
    listed = list(tasks)
    by_id = {str(t["id"]).lower(): t for t in listed}
    numeric = {int(key): key for key in by_id if key.isdigit()}
    roots: dict[str, str] = {}  # lower-cased id of a task that blocks its dependents -> its failed root
    for key, task in by_id.items():
        failed = str(task.get("result") or "").lower() == "failure"
        if (
            str(task.get("state", "")).lower() == "completed"
            and failed
            and _dependency_action(task) == "block"
        ):
            roots[key] = str(task["id"])
    waiting = {
        key: _dependencies(task, numeric)
        for key, task in by_id.items()
        if str(task.get("state", "")).lower() == "active" and task.get("dependsOn")
    }
    changed = True
    while changed:  # a task behind a blocked task is blocked too
        changed = False
        for key, deps in waiting.items():
            if key in roots:
                continue
            root = next((roots[d] for d in deps if d in roots), None)
            if root is not None:
                roots[key] = root
                changed = True
    return [BlockedTask(str(by_id[key]["id"]), roots[key]) for key in waiting if key in roots]
