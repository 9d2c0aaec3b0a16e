"""Several workloads' plans shown as one (``plan``/``apply``/``destroy`` of several manifests or a folder).

Each workload's plan is shown as for one manifest, under a heading naming the workload and its file, in the
order they are applied; one line at the end adds them up. JSON is ``{"workloads": [plan, ...], "summary":
counts}``; Markdown keeps the whole comment under GitHub's limit by sharing the budget between workloads.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import msgspec

from batchrun.plan.actions import Action, Plan
from batchrun.plan.markdown import BUDGET, render_markdown
from batchrun.plan.plan_json import plan_to_json
from batchrun.plan.render import render_text
from batchrun.plan.secrets import mask
from batchrun.redact import redact

MIN_SHARE = 1_500  # characters a workload's details need to say anything useful


class WorkloadPlan(msgspec.Struct, frozen=True):
    manifest: Path
    plan: Plan
    extra: tuple[str, ...] = ()  # lines shown after the plan (its pool's cost)


def total_counts(plans: Sequence[WorkloadPlan]) -> dict[str, int]:
    totals = {action.value: 0 for action in Action}
    for one in plans:
        for action, count in one.plan.counts().items():
            totals[action] += count
    return totals


def set_summary_line(plans: Sequence[WorkloadPlan], destroy: bool = False) -> str:
    changed = [one for one in plans if one.plan.has_changes]
    totals = total_counts(plans)
    workloads = f"{len(plans)} workload{'s' if len(plans) != 1 else ''}"
    if not changed:
        return f"{workloads}: no changes." + (
            " Nothing of these manifests is left to delete."
            if destroy
            else " Live state matches every manifest."
        )
    text = (
        f"{workloads}, {len(changed)} with changes: {totals['create']} to create, "
        f"{totals['update']} to update, {totals['replace']} to replace, {totals['delete']} to delete"
    )
    if totals["blocked"]:
        text += f", {totals['blocked']} blocked"
    return text + f" ({totals['no-op']} unchanged)."


def _heading(one: WorkloadPlan) -> str:
    return f"=== workload {one.plan.workload} ({one.manifest}) ==="


def render_set_text(plans: Sequence[WorkloadPlan], destroy: bool = False) -> str:
    lines: list[str] = []
    for one in plans:
        lines += [_heading(one), render_text(one.plan, destroy), *one.extra, ""]
    lines.append(set_summary_line(plans, destroy))
    return "\n".join(lines)


def render_set_json(plans: Sequence[WorkloadPlan]) -> str:
    document = {
        "workloads": [{"manifest": str(one.manifest), **mask(plan_to_json(one.plan))} for one in plans],
        "summary": total_counts(plans),
    }
    return redact(json.dumps(document, indent=2, default=str))


def render_set_markdown(plans: Sequence[WorkloadPlan], destroy: bool = False, budget: int = BUDGET) -> str:
    """One comment: the summary and a table of the workloads, then each changed workload's plan within its
    share of ``budget``."""
    head = [
        f"## batchrun {'destroy ' if destroy else ''}plan: {len(plans)} workloads",
        "",
        f"**{set_summary_line(plans, destroy)}**",
        "",
        "| workload | manifest | create | update | replace | delete | blocked |",
        "|---|---|---|---|---|---|---|",
    ]
    for one in plans:
        counts = one.plan.counts()
        name = one.plan.workload.replace("|", "\\|")
        manifest = str(one.manifest).replace("|", "\\|").replace("`", "'")
        head.append(
            f"| `{name}` | `{manifest}` | {counts['create']} | {counts['update']} | {counts['replace']} | "
            f"{counts['delete']} | {counts['blocked']} |"
        )
    text = "\n".join(head) + "\n\n"
    changed = [one for one in plans if one.plan.has_changes]
    share = (budget - len(text) - 200) // max(1, len(changed))
    if changed and share < MIN_SHARE:
        return redact(
            text + "(each workload's details are left out to fit a comment; `batchrun plan` shows them)\n"
        )
    for one in changed:
        text += render_markdown(one.plan, destroy, extra=one.extra, budget=share) + "\n"
    return redact(text)
