"""The plan as Markdown for a pull-request comment (``batchrun plan -o markdown``).

Compact and in a fixed order: the counts first, then what needs attention (blocked, replaced and deleted
resources), then the other resource changes, then each job's tasks collapsed by why they run, each group in a
``<details>`` block listing a bounded number of task ids. Whatever the plan's size, the comment stays under
GitHub's limit of 65,536 characters (:data:`COMMENT_LIMIT`): when the full lists would not fit, fewer ids are
listed per group, then none, then fewer groups; the counts are always complete.

Values are masked (write-only fields) and the whole text passes through :func:`batchrun.redact.redact`, so no
secret reaches the comment.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import Any

import msgspec
from msgspec import field

from batchrun.plan.actions import Action, Change, Plan, TaskChanges, by_part
from batchrun.plan.decide_orphans import ORPHAN
from batchrun.plan.render import STUCK, kept_worth_showing, summary_line, task_worth_showing
from batchrun.plan.secrets import mask, masked_field
from batchrun.redact import redact

COMMENT_LIMIT = 65_536  # GitHub's maximum comment body, in characters
BUDGET = 60_000  # what this renderer aims to stay under, leaving room for a CI's own header
VALUE_WIDTH = 80
FIELDS_SHOWN = 10
GROUPS_SHOWN = 40  # task groups (by reason) per job before the rest are counted in one line
IDS_PER_GROUP = (50, 10, 0)  # tried in order until the comment fits
ATTENTION = (Action.BLOCKED, Action.REPLACE, Action.DELETE)
SYMBOLS = {
    Action.BLOCKED: "**blocked**",
    Action.REPLACE: "**replace**",
    Action.DELETE: "**delete**",
    Action.CREATE: "create",
    Action.UPDATE: "update",
    Action.NOOP: "keep",
}


def _cell(text: str) -> str:
    """Text safe inside a table cell and a code span: no pipes, backticks or line breaks."""
    for old, new in (("\\", "\\\\"), ("|", "\\|"), ("`", "'"), ("\r", " "), ("\n", " ")):
        text = text.replace(old, new)
    return text


def _value(value: Any) -> str:
    text = json.dumps(mask(value), default=str)
    if len(text) > VALUE_WIDTH:
        text = text[: VALUE_WIDTH - 3] + "..."
    return _cell(text)


def _details(change: Change) -> str:
    """What changes on one resource, in one table cell."""
    parts: list[str] = []
    if change.action is Action.BLOCKED:
        parts.append(f"**{_cell(change.reason)}**")
        if change.unblock:
            parts.append(f"to proceed: {_cell(change.unblock)}")
    elif change.reason:
        parts.append(_cell(change.reason))
    fields = list(change.fields)
    for item in map(masked_field, fields[:FIELDS_SHOWN]):
        text = f"`{_cell(item.path)}`: `{_value(item.before)}` → `{_value(item.after)}`"
        if item.forces_replacement:
            text += " (forces replacement)"
        parts.append(text)
    if len(fields) > FIELDS_SHOWN:
        parts.append(f"... and {len(fields) - FIELDS_SHOWN} more field(s)")
    return "<br>".join(parts) if parts else ""


def _resource_table(changes: Sequence[Change]) -> list[str]:
    if not changes:
        return []
    lines = ["| | resource | what changes |", "|---|---|---|"]
    lines.extend(f"| {SYMBOLS[c.action]} | `{_cell(c.address)}` | {_details(c)} |" for c in changes)
    return lines


def _task_id(change: Change) -> str:
    return change.address.split("/", 2)[2]


def _group_key(change: Change) -> tuple[str, str]:
    """(heading, detail) of a task's group: tasks that run by their cause; the rest by what happens."""
    if change.action is Action.BLOCKED:
        return "blocked", change.reason
    if change.runs:
        verb = "run" if change.action is Action.CREATE else "run again"
        return f"{verb}: {change.cause or change.reason or 'changed'}", change.reason
    if change.action is Action.UPDATE:
        return "updated in place", change.reason
    if change.action is Action.DELETE:
        return f"deleted: {change.reason or 'not in the manifest'}", ""
    if change.cause in STUCK:
        return f"do not run: {change.cause}", change.reason
    return "kept: not in the manifest (--prune deletes them)", ""


class _JobTasks(msgspec.Struct):
    """A job's tasks as the comment shows them: counts of all, and the ones shown grouped by why."""

    counts: Counter[Action] = field(default_factory=Counter)
    runs: int = 0
    groups: dict[str, list[Change]] = field(default_factory=dict)  # heading -> its tasks, in plan order

    def add(self, change: Change) -> None:
        self.counts[change.action] += 1
        if change.runs:
            self.runs += 1
        if task_worth_showing(change):
            self.add_shown(change)

    def add_shown(self, change: Change) -> None:
        self.groups.setdefault(_group_key(change)[0], []).append(change)


def _gathered(plan: Plan) -> tuple[list[Change], dict[str, _JobTasks]]:
    """The plan's resource changes, and its tasks by job, in one pass: a task kept as it is only counts (a
    plan of 100,000 tasks makes each kept task's change only as it is read, and the comment is made up to
    six times to fit)."""
    resources: list[Change] = []
    jobs: dict[str, _JobTasks] = {}
    for change in by_part(plan.changes):
        if isinstance(change, TaskChanges):  # a job's task changes: a kept task is made only to be shown
            tasks = jobs.setdefault(change.job_id, _JobTasks())
            for whole, position, reason, cause in change.walk():
                if whole is not None:
                    tasks.add(whole)
                    continue
                tasks.counts[Action.NOOP] += 1
                if kept_worth_showing(reason, cause):
                    tasks.add_shown(change.kept_change(position, reason, cause))
            continue
        if change.kind != "task":
            resources.append(change)
            continue
        jobs.setdefault(change.address.split("/")[1], _JobTasks()).add(change)
    return resources, jobs


def _task_section(job: str, tasks: _JobTasks, ids_per_group: int, groups_shown: int) -> list[str]:
    counts, runs = tasks.counts, tasks.runs
    line = (
        f"**Tasks of `job/{_cell(job)}`**: {runs} to run ({counts[Action.CREATE]} new in the job, "
        f"{counts[Action.REPLACE]} replaced), {counts[Action.UPDATE]} to update, "
        f"{counts[Action.DELETE]} to delete, {counts[Action.NOOP]} unchanged"
    )
    if counts[Action.BLOCKED]:
        line += f", {counts[Action.BLOCKED]} blocked"
    lines = [line, ""]
    ordered = sorted(tasks.groups.items(), key=lambda item: (-len(item[1]), item[0]))
    for heading, members in ordered[:groups_shown]:
        lines.append(f"<details><summary>{len(members)} task(s): {_cell(heading)}</summary>")
        lines.append("")
        if ids_per_group:
            listed = members[:ids_per_group]
            for change in listed:
                detail = _group_key(change)[1]
                suffix = f" ({_cell(detail)})" if detail and detail not in heading else ""
                lines.append(f"- `{_cell(_task_id(change))}`{suffix}")
            if len(members) > len(listed):
                lines.append(f"- ... and {len(members) - len(listed)} more")
        else:
            lines.append(f"{len(members)} task(s); `batchrun plan` lists them.")
        lines.append("")
        lines.append("</details>")
        lines.append("")
    rest = ordered[groups_shown:]
    if rest:
        hidden = sum(len(members) for _, members in rest)
        lines.append(
            f"... and {hidden} more task(s) in {len(rest)} other group(s); `batchrun plan` lists them."
        )
        lines.append("")
    return lines


def _render(
    plan: Plan,
    gathered: tuple[list[Change], dict[str, _JobTasks]],
    destroy: bool,
    ids_per_group: int,
    groups_shown: int,
    extra: Sequence[str],
) -> str:
    resources, jobs = gathered
    attention = [c for a in ATTENTION for c in resources if c.action is a]
    other = [c for c in resources if c.action in (Action.CREATE, Action.UPDATE)]
    noted = [c for c in resources if c.action is Action.NOOP and c.reason and c.cause == ORPHAN]
    lines = [
        f"### batchrun {'destroy ' if destroy else ''}plan: workload `{_cell(plan.workload)}`",
        "",
        f"Target: {_cell(plan.target.removeprefix('Target: '))}",
        "",
        f"**{summary_line(plan, destroy)}**",
        "",
    ]
    if attention:
        lines += ["#### Needs attention", "", *_resource_table(attention), ""]
    if other:
        lines += ["#### Changes", "", *_resource_table(other), ""]
    if noted:
        lines += ["#### Owned but no longer in the manifest", "", *_resource_table(noted), ""]
    for job, tasks in jobs.items():
        if tasks.groups:
            lines += _task_section(job, tasks, ids_per_group, groups_shown)
    lines.extend(extra)
    return redact("\n".join(lines).rstrip() + "\n")


def render_markdown(
    plan: Plan, destroy: bool = False, extra: Sequence[str] = (), budget: int = BUDGET
) -> str:
    """The plan as a pull-request comment of at most ``budget`` characters (``extra``: lines added at the end,
    e.g. the cost of the pools)."""
    text = ""
    gathered = _gathered(plan)
    for groups_shown in (GROUPS_SHOWN, 10, 0):
        for ids in IDS_PER_GROUP:
            text = _render(plan, gathered, destroy, ids, groups_shown, extra)
            if len(text) <= budget:
                return text
    # Only the resource tables are left and they do not fit (thousands of resources): cut at a line.
    note = "\n\n(cut to fit a comment; `batchrun plan` shows the whole plan)\n"
    cut = text[: budget - len(note)]
    return cut[: cut.rfind("\n")] + note
