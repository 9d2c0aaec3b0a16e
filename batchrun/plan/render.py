"""The plan as text (Terraform-style symbols) and as JSON, both from the same :class:`Plan`.

Tasks are summarised per action with the first few addresses, so a 100,000-task plan stays readable.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Any

from batchrun.plan.actions import Action, Change, Plan, TaskChanges, by_part
from batchrun.plan.plan_json import plan_to_json
from batchrun.plan.secrets import mask
from batchrun.redact import redact

SYMBOLS = {
    Action.CREATE: "+",
    Action.UPDATE: "~",
    Action.REPLACE: "-/+",
    Action.DELETE: "-",
    Action.BLOCKED: "!",
    Action.NOOP: " ",
}
VERBS = {
    Action.CREATE: "created",
    Action.UPDATE: "updated in place",
    Action.REPLACE: "replaced",
    Action.DELETE: "deleted",
    Action.BLOCKED: "BLOCKED",
}
TASK_VERBS = {Action.CREATE: "will run", Action.REPLACE: "will run again (replaced in its job)"}
TASKS_SHOWN_PER_ACTION = 5
STUCK = ("failed", "waits for a failed task")  # tasks that do not run, shown even when nothing changes


def task_worth_showing(change: Change) -> bool:
    """A task change a plan shows: one that acts, a task that will not run (STUCK), or an orphan kept."""
    return change.action is not Action.NOOP or kept_worth_showing(change.reason, change.cause)


def kept_worth_showing(reason: str, cause: str) -> bool:
    """A task kept as it is that a plan shows: one that will not run, or an orphan kept."""
    return cause in STUCK or "--prune" in reason


VALUE_WIDTH = 100
FILES_SHOWN = 5  # file names listed per storage input


def _value(value: Any) -> str:
    text = json.dumps(mask(value), default=str)
    if len(text) > VALUE_WIDTH:
        text = text[: VALUE_WIDTH - 3] + "..."
    return redact(text)


def _operation(change: Change, name: str) -> dict[str, Any] | None:
    return next((dict(op.args) for op in change.operations if op.name == name), None)


def _some(names: list[str]) -> str:
    shown = ", ".join(names[:FILES_SHOWN])
    return shown + (f", ... and {len(names) - FILES_SHOWN} more" if len(names) > FILES_SHOWN else "")


def render_storage_input(change: Change) -> list[str]:
    """A storage input as what happens to which files (not a before/after pair): the container to create,
    the files to upload (new, or changed by Content-MD5) and how many are unchanged, the blobs to delete."""
    symbol = SYMBOLS[change.action]
    create = _operation(change, "storage.create_container")
    upload = _operation(change, "storage.upload")
    delete = _operation(change, "storage.delete_blobs")
    container = next((op["container"] for op in (create, upload, delete) if op), "")
    files = [str(f["blob"]) for f in (upload or {}).get("files", [])]
    unchanged = next(
        (str(f.before).split(" ", 1)[0] for f in change.fields if f.path == "files" and f.before is not None),
        "0",
    )
    parts: list[str] = []
    if create:
        parts.append(f"container {container} to create")
    if files:
        kind = "new" if create else "new or changed (by Content-MD5)"
        parts.append(f"{len(files)} file(s) to upload, {kind}")
        if not create and unchanged != "0":
            parts.append(f"{unchanged} unchanged")
    if delete:
        parts.append(f"{len(delete.get('blobs', []))} extra blob(s) to delete")
    lines = [f"{symbol:>3} {change.address} will be {VERBS[change.action]}: " + "; ".join(parts)]
    if files:
        lines.append(f"        upload to {container}: {_some(files)}")
    if delete:
        lines.append(f"        delete from {container}: {_some([str(b) for b in delete.get('blobs', [])])}")
    return lines


def render_change(change: Change) -> list[str]:
    if change.kind == "storage.input" and change.action in (Action.CREATE, Action.UPDATE):
        return render_storage_input(change)
    symbol = SYMBOLS[change.action]
    verb = TASK_VERBS.get(change.action) if change.kind == "task" else None
    header = f"{symbol:>3} {change.address} {verb or 'will be ' + VERBS[change.action]}"
    if change.action is Action.BLOCKED:
        header = f"{symbol:>3} {change.address} is BLOCKED: {change.reason}"
    elif change.reason and change.action is not Action.UPDATE:
        header += f" ({change.reason})"
    lines = [header]
    for item in change.fields:
        if change.action is Action.CREATE and item.before is None:  # nothing before: just the new value
            lines.append(f"        + {item.path}: {_value(item.after)}")
            continue
        line = f"        ~ {item.path}: {_value(item.before)} -> {_value(item.after)}"
        if item.forces_replacement:
            line += "  # forces replacement"
        lines.append(line)
    if change.action is Action.UPDATE and change.reason:
        lines.append(f"        note: {change.reason}")
    if change.action is Action.BLOCKED and change.unblock:
        lines.append(f"        to proceed: {change.unblock}")
    return lines


class _JobTasks:
    """What the text shows of one job's tasks, gathered as the changes go by: counts, the first few of each
    kind, and why tasks run. No list of every task is made (a plan of 100,000 tasks makes each kept task's
    change only as it is read)."""

    _STUCK_TEXT = {
        "failed": "failed and will not run again",
        "waits for a failed task": "wait for a failed task",
    }

    def __init__(self, job: str) -> None:
        self.job = job
        self.counts: Counter[Action] = Counter()
        self.shown: dict[Action, list[Change]] = {}  # the first few of each action that acts
        self.causes: Counter[str] = Counter()  # why tasks run
        self.stuck: dict[str, list[Change]] = {cause: [] for cause in STUCK}  # the first few, kept tasks
        self.stuck_counts: Counter[str] = Counter()
        self.carried = 0
        self.extra_kept = 0
        self.worth_showing = False

    def keep(self, part: TaskChanges, position: int, reason: str, cause: str) -> None:
        """A task kept as it is, read from ``part`` without its change, which is made only to be shown."""
        if self._kept(reason, cause):
            self.stuck[cause].append(part.kept_change(position, reason, cause))

    def add(self, change: Change) -> None:
        action = change.action
        if action is Action.NOOP:
            if self._kept(change.reason, change.cause):
                self.stuck[change.cause].append(change)
            return
        self.counts[action] += 1
        shown = self.shown.setdefault(action, [])
        if len(shown) < TASKS_SHOWN_PER_ACTION:
            shown.append(change)
        if change.runs:
            self.causes[change.cause] += 1
        self.worth_showing = self.worth_showing or task_worth_showing(change)

    def _kept(self, reason: str, cause: str) -> bool:
        """Count a task kept as it is; True when it is one of the first few stuck ones, to be shown."""
        self.counts[Action.NOOP] += 1
        self.worth_showing = self.worth_showing or kept_worth_showing(reason, cause)
        if "--prune" in reason:
            self.extra_kept += 1
        if cause == "current" and reason:
            self.carried += 1
        if cause not in STUCK:
            return False
        self.stuck_counts[cause] += 1
        return len(self.stuck[cause]) < TASKS_SHOWN_PER_ACTION

    def lines(self) -> list[str]:
        parts = [
            f"{self.counts[action]} to {word}"
            for action, word in (
                (Action.CREATE, "add"),
                (Action.REPLACE, "replace"),
                (Action.UPDATE, "update"),
                (Action.DELETE, "delete"),
            )
        ]
        line = f"    tasks of job/{self.job}: " + ", ".join(parts) + f", {self.counts[Action.NOOP]} unchanged"
        if self.carried:
            line += f" ({self.carried} carried over from an earlier run)"
        if self.counts[Action.BLOCKED]:
            line += f", {self.counts[Action.BLOCKED]} blocked"
        lines = [line]
        if self.causes:
            lines.append(
                "    why they run: " + ", ".join(f"{n} {cause}" for cause, n in self.causes.most_common())
            )
        for cause in STUCK:
            count = self.stuck_counts[cause]
            if count:
                shown = "; ".join(f"{c.address.split('/', 2)[2]}: {c.reason}" for c in self.stuck[cause])
                more = (
                    f"; ... and {count - TASKS_SHOWN_PER_ACTION} more"
                    if count > TASKS_SHOWN_PER_ACTION
                    else ""
                )
                lines.append(f"    {count} task(s) {self._STUCK_TEXT[cause]}: {shown}{more}")
        if self.extra_kept:
            lines.append(f"    {self.extra_kept} task(s) not in the manifest are kept (--prune deletes them)")
        for action in (Action.CREATE, Action.REPLACE, Action.UPDATE, Action.DELETE):
            for change in self.shown.get(action, []):
                lines.extend("  " + text for text in render_change(change))
            if self.counts[action] > TASKS_SHOWN_PER_ACTION:
                lines.append(
                    f"      ... and {self.counts[action] - TASKS_SHOWN_PER_ACTION} more to {action.value}"
                )
        return lines


def summary_line(plan: Plan, destroy: bool = False) -> str:
    counts = plan.counts()
    if not plan.has_changes:
        return (
            "No changes. Nothing of this manifest is left to delete."
            if destroy
            else "No changes. Live state matches the manifest."
        )
    text = (
        f"Plan: {counts['create']} to create, {counts['update']} to update, {counts['replace']} to replace, "
        f"{counts['delete']} to delete"
    )
    if counts["blocked"]:
        text += f", {counts['blocked']} blocked"
    return text + f" ({counts['no-op']} unchanged)."


def render_text(plan: Plan, destroy: bool = False) -> str:
    lines: list[str] = []
    by_job: dict[
        str, _JobTasks
    ] = {}  # task/<job>/<task>: a workload with several jobs is summarised job by job
    for change in by_part(plan.changes):
        if isinstance(change, TaskChanges):  # a job's task changes, its kept tasks not made
            summary = by_job.get(change.job_id)
            if summary is None:
                summary = by_job[change.job_id] = _JobTasks(change.job_id)
            for whole, position, reason, cause in change.walk():
                if whole is None:
                    summary.keep(change, position, reason, cause)
                else:
                    summary.add(whole)
        elif change.kind == "task":
            job = change.address.split("/")[1]
            summary = by_job.get(job)
            if summary is None:
                summary = by_job[job] = _JobTasks(job)
            summary.add(change)
        elif (
            change.action is not Action.NOOP
            or (destroy and change.reason)
            or "job-level" in change.reason
            or change.cause == "orphan"  # owned but no longer in the manifest (plan.decide_orphans)
        ):
            lines.extend(
                render_change(change)
                if change.action is not Action.NOOP
                else [f"    {change.address}: {change.reason}"]
            )
    for summary in by_job.values():
        if summary.worth_showing:
            lines.extend(summary.lines())
    lines.append("")
    lines.append(summary_line(plan, destroy))
    return "\n".join(lines)


def render_json(plan: Plan) -> str:
    return redact(json.dumps(mask(plan_to_json(plan)), indent=2, default=str))  # write-only values masked


def blocked_lines(changes: Iterable[Change]) -> list[str]:
    return [f"{c.address}: {c.reason}; to proceed: {c.unblock}" for c in changes]
