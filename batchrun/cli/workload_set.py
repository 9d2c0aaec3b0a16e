"""``plan``, ``apply``, ``destroy`` and ``status`` of several manifests or a folder, as one.

The workloads are loaded and checked together (:func:`batchrun.api.load_all`), planned against one session,
shown as one plan (:mod:`batchrun.plan.render_set`) and approved once. Apply carries the plans out in order (a
pool's workload before the workloads whose jobs run on it; destroy the other way round) and stops at the first
failure, naming the workloads done and not done. One exit code for all.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

import click
import msgspec
from msgspec.structs import replace

from batchrun.api import Session, destroy_plan_with, execute, plan_with
from batchrun.cli import exit_codes
from batchrun.cli.approval import Progress, approve, confirm_blocked, done_line, interactive
from batchrun.cli.session import ManifestSet, TargetChoice, note
from batchrun.errors import BatchrunError, PlanError
from batchrun.model import Workload
from batchrun.plan.decide_common import CONFIRM_FLAG, PlanOptions
from batchrun.plan.render import blocked_lines
from batchrun.plan.render_set import (
    WorkloadPlan,
    render_set_json,
    render_set_markdown,
    render_set_text,
    total_counts,
)
from batchrun.plan.saved import SavedPlan
from batchrun.plan.workload_order import destroy_order
from batchrun.saved_plans import (
    check_saved_plan,
    load_planned_manifest,
    manifest_ref,
    saved_plan,
    write_saved_plans,
)


class PlanSetSettings(msgspec.Struct, frozen=True):
    output: str
    out: Path | None
    price_file: Path | None
    detailed_exitcode: bool


def shown(path: Path) -> Path:
    """A manifest's path relative to the working folder when it lies under it (as a user would type it, and
    what a saved plan records, so that it applies from the same folder of another checkout)."""
    try:
        return path.resolve().relative_to(Path.cwd().resolve())
    except ValueError:
        return path


def _cost(session: Session, workload: Workload, price_file: Path | None) -> tuple[str, ...]:
    from batchrun.cost.report import plan_cost_lines, price_file_from

    return tuple(plan_cost_lines(workload, session.target, price_file_from(price_file)))


def plan_set(
    sources: ManifestSet, target: TargetChoice, options: PlanOptions, settings: PlanSetSettings
) -> None:
    workloads = sources.load_all()
    plans: list[WorkloadPlan] = []
    saved: list[SavedPlan] = []
    with target.session() as session:
        for workload in workloads:
            if settings.out:
                ref = manifest_ref(shown(workload.manifest_path), {}, (), sources.max_tasks)
                plan, one = saved_plan(session, workload, options, ref)
                saved.append(one)
            else:
                plan = plan_with(session, workload, options)
            cost = () if settings.output == "json" else _cost(session, workload, settings.price_file)
            plans.append(WorkloadPlan(shown(workload.manifest_path), plan, cost))
    if settings.out:
        write_saved_plans(saved, settings.out)
    if settings.output == "markdown":
        click.echo(render_set_markdown(plans))
    else:
        click.echo(render_set_json(plans) if settings.output == "json" else render_set_text(plans))
    if settings.out:
        note(f"Saved the plans to {settings.out}: `batchrun apply {settings.out}` carries out exactly these.")
    if settings.detailed_exitcode and any(one.plan.blocked for one in plans):
        note("The plan has blocked changes: apply would refuse it (exit 1); see the lines marked '!'.")
        sys.exit(exit_codes.ERROR)
    if settings.detailed_exitcode and any(one.plan.has_changes for one in plans):
        sys.exit(exit_codes.CHANGES_PRESENT)


def _blocked(plans: Sequence[WorkloadPlan]) -> list[str]:
    return [f"{one.plan.workload}: {line}" for one in plans for line in blocked_lines(one.plan.blocked)]


def _resolve_blocked(
    plans: list[WorkloadPlan], replan: Callable[[WorkloadPlan], WorkloadPlan], auto_approve: bool, done: str
) -> list[WorkloadPlan]:
    """Ask once about confirmation-only blocks on a terminal (then plan those workloads again with
    --confirm-replace); any other block is an error listing every blocked change."""
    lines = _blocked(plans)
    if not lines:
        return plans
    only_confirmation = all(CONFIRM_FLAG in change.unblock for one in plans for change in one.plan.blocked)
    if only_confirmation and interactive() and not auto_approve:
        confirm_blocked(lines)
        return [replan(one) if one.plan.blocked else one for one in plans]
    raise PlanError(f"the plan has blocked changes, so nothing was {done}:\n  " + "\n  ".join(lines))


def _carry_out(
    session: Session,
    plans: Sequence[WorkloadPlan],
    sources: ManifestSet,
    verb: str,
    break_lock: bool,
    saved: bool = False,
) -> None:
    """Each workload's plan in order; a failure names what was done and how to finish."""
    finished: list[str] = []
    for one in plans:
        if not one.plan.has_changes:
            continue
        note(f"{'Applying' if verb == 'apply' else 'Destroying'} workload {one.plan.workload} ...")
        try:
            execute(session, one.plan, Progress(), break_lock=break_lock, remove_lock=verb == "destroy")
        except (BatchrunError, KeyboardInterrupt) as error:
            left = [p.plan.workload for p in plans if p.plan.has_changes and p.plan.workload not in finished]
            done = ", ".join(finished) or "none"
            finish = (
                "Saved plans are used once: make the plans again (`batchrun plan MANIFEST... -out FILE`), "
                "review them and apply that file; it does only what is left."
                if saved
                else f"Run `{sources.command(verb)}` again to finish (it does only what is left)."
            )
            message = (
                f"workload {one.plan.workload}: {error}\n{verb.capitalize()} stopped there. Workloads done: "
                f"{done}; not done or part-way: {', '.join(left)}. {finish}"
            )
            if isinstance(error, KeyboardInterrupt):
                note(message)
                raise
            raise type(error)(message) from error
        finished.append(one.plan.workload)
        note(f"  workload {one.plan.workload}: {done_line(one.plan)}")


def _set_done_line(plans: Sequence[WorkloadPlan]) -> str:
    counts = total_counts(plans)
    changed = sum(1 for one in plans if one.plan.has_changes)
    return (
        f"{changed} of {len(plans)} workloads changed: {counts['create']} created, "
        f"{counts['update']} updated, {counts['replace']} replaced, {counts['delete']} deleted."
    )


def apply_set(
    sources: ManifestSet,
    target: TargetChoice,
    options: PlanOptions,
    auto_approve: bool,
    wait: Callable[[Session, Sequence[Workload]], int] | None,
    break_lock: bool,
) -> None:
    workloads = sources.load_all()
    by_name = {workload.name: workload for workload in workloads}
    with target.session() as session:
        plans = [WorkloadPlan(shown(w.manifest_path), plan_with(session, w, options)) for w in workloads]
        click.echo(render_set_text(plans))
        plans = _resolve_blocked(
            plans,
            lambda one: replace(
                one,
                plan=plan_with(session, by_name[one.plan.workload], replace(options, confirm_replace=True)),
            ),
            auto_approve,
            "applied",
        )
        _apply_plans(session, plans, sources, auto_approve, break_lock)
        if wait is not None:
            code = wait(session, workloads)
            if code:
                sys.exit(code)


def _apply_plans(
    session: Session,
    plans: Sequence[WorkloadPlan],
    sources: ManifestSet,
    auto_approve: bool,
    break_lock: bool,
    saved: bool = False,
) -> None:
    if not any(one.plan.has_changes for one in plans):
        note("Nothing to apply.")
        return
    approve(auto_approve, "Apply these changes?")
    _carry_out(session, plans, sources, "apply", break_lock, saved)
    note("Apply complete: " + _set_done_line(plans))


def apply_saved_set(
    sources: ManifestSet,
    saved: Sequence[SavedPlan],
    target: TargetChoice,
    options: PlanOptions,
    wait: Callable[[Session, Sequence[Workload]], int] | None,
    break_lock: bool,
) -> None:
    """``apply FILE`` of a plan saved from several manifests: every plan is checked (nothing moved, nothing
    blocked) before any is carried out."""
    if sources.variables or sources.var_files:
        raise PlanError(
            "a plan saved from several manifests was made with each manifest's own variables; apply it "
            "without --var and --var-file."
        )
    workloads = [load_planned_manifest(one, {}, ()) for one in saved]
    with target.session() as session:
        plans = [
            WorkloadPlan(shown(workload.manifest_path), check_saved_plan(session, one, workload, options))
            for one, workload in zip(saved, workloads, strict=True)
        ]
        click.echo(render_set_text(plans))
        blocked = _blocked(plans)
        if blocked:
            raise PlanError(
                "the saved plans have blocked changes, so nothing was applied:\n  " + "\n  ".join(blocked)
            )
        _apply_plans(session, plans, sources, True, break_lock, saved=True)
        if wait is not None:
            code = wait(session, workloads)
            if code:
                sys.exit(code)


def destroy_set(
    sources: ManifestSet,
    target: TargetChoice,
    confirm_replace: bool,
    auto_approve: bool,
    containers: bool,
    break_lock: bool,
) -> None:
    workloads = destroy_order(sources.load_all())
    by_name = {workload.name: workload for workload in workloads}
    with target.session() as session:
        plans = [
            WorkloadPlan(
                shown(w.manifest_path),
                destroy_plan_with(session, w, PlanOptions(confirm_replace=confirm_replace), containers),
            )
            for w in workloads
        ]
        click.echo(render_set_text(plans, destroy=True))
        plans = _resolve_blocked(
            plans,
            lambda one: replace(
                one,
                plan=destroy_plan_with(
                    session, by_name[one.plan.workload], PlanOptions(confirm_replace=True), containers
                ),
            ),
            auto_approve,
            "deleted",
        )
        if not any(one.plan.has_changes for one in plans):
            note("Nothing to destroy.")
            return
        approve(auto_approve, "Delete these resources?")
        _carry_out(session, plans, sources, "destroy", break_lock)
        note("Destroy complete: " + _set_done_line(plans))


def status_set(sources: ManifestSet, output: str, target: TargetChoice, no_color: bool) -> None:
    """Each workload's status, in apply order: text sections, or ``{"workloads": [status, ...]}``."""
    from batchrun.azure.monitor import BatchMonitor
    from batchrun.azure.results import read_record
    from batchrun.azure.usage import usage_document, usage_report
    from batchrun.watch import output_settings
    from batchrun.watch.status import read_status, render_status

    workloads = sources.load_all()
    documents = []
    with target.session() as session:
        clients = session.clients
        for workload in workloads:
            results = read_record(clients.blob, workload.name).results if workload.job is not None else {}
            status = read_status(BatchMonitor(clients.batch), workload, results)
            if output == "json":
                hours = usage_document(clients, workload)
                documents.append(status.to_json() | {"nodeHours": hours})
                continue
            click.echo(f"=== workload {workload.name} ({shown(workload.manifest_path)}) ===")
            render_status(output_settings(output, no_color).console(), status)
            for line in usage_report(clients, workload):
                click.echo(line)
            click.echo("")
    if output == "json":
        click.echo(json.dumps({"workloads": documents}, indent=2))
