"""``batchrun plan``, ``batchrun apply`` and ``batchrun destroy``.

The target line and progress go to stderr; the plan (text or ``-o json``) goes to stdout. ``plan
--detailed-exitcode`` exits 0 without changes, 2 with changes, 1 on error or when the plan is blocked.
``apply`` shows the plan and asks before changing anything unless ``--auto-approve``; blocked changes that
only need a confirmation (replacing or deleting a pool or job with work in progress) are asked about on a
terminal, else need ``--confirm-replace``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click
from msgspec.structs import replace

from batchrun.cli import exit_codes
from batchrun.cli.options import output_option, plain_text_option, timeout_option
from batchrun.cli.session import (
    ManifestInput,
    ManifestSet,
    TargetChoice,
    job_keeps_running_on_interrupt,
    manifest_set_input,
    note,
    target_options,
)
from batchrun.errors import PlanError, TargetUnreachableError

if TYPE_CHECKING:
    from batchrun.api import Session
    from batchrun.model import Workload

# Each command imports what it uses when it runs (a plan of one manifest needs neither the saved plans, nor
# the sets of manifests, nor apply's prompts), so that it starts no slower than it must.
F = TypeVar("F", bound=Callable[..., Any])


def common_options(function: F) -> F:
    """MANIFEST... (files or folders), variables, ``--target``, ``-v`` and ``--confirm-replace``: what every
    write command takes."""
    function = click.option(
        "--confirm-replace",
        is_flag=True,
        help="Allow replacing or deleting a pool or job that has active or running tasks.",
    )(function)
    return manifest_set_input(target_options(function))


def plan_options(function: F) -> F:
    function = click.option(
        "--reboot-nodes",
        is_flag=True,
        help="When the pool's start task or packages change, reboot its nodes (each after its tasks end).",
    )(function)
    function = click.option(
        "--adopt", is_flag=True, help="Take over a pool or job with the same id not made by this workload."
    )(function)
    function = click.option(
        "--prune",
        is_flag=True,
        help="Delete what is no longer in the manifest: tasks, uploaded blobs, the workload's pools, jobs.",
    )(function)
    function = click.option(
        "--rerun-failed", is_flag=True, help="Run again the tasks that failed (their definition unchanged)."
    )(function)
    function = click.option(
        "--rerun",
        "rerun",
        multiple=True,
        metavar="GLOB",
        help="Run again the tasks whose id matches GLOB (repeatable), and the tasks downstream of them.",
    )(function)
    return function


@click.command("plan")
@common_options
@output_option(("text", "json", "markdown"))
@plain_text_option
@plan_options
@click.option("-out", "--out", "out", type=click.Path(path_type=Path), help="Save the plan for `apply FILE`.")
@click.option(
    "--price-file", type=click.Path(path_type=Path), help="VM prices to use (also $BATCHRUN_PRICE_FILE)."
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 0 without changes, 2 with changes, 1 on error or when changes are blocked.",
)
def plan_command(
    sources: ManifestSet,
    output: str,
    target: TargetChoice,
    confirm_replace: bool,
    prune: bool,
    adopt: bool,
    rerun_failed: bool,
    rerun: tuple[str, ...],
    reboot_nodes: bool,
    out: Path | None,
    price_file: Path | None,
    detailed_exitcode: bool,
) -> None:
    """Show what apply would change, Terraform-style (+ create, ~ update, -/+ replace, - delete).

    Several manifests, or folders of them, make one plan (see docs/gitops.md)."""
    from batchrun.api import plan_with
    from batchrun.cost.report import plan_cost_lines, price_file_from, with_cost
    from batchrun.plan.decide_common import PlanOptions
    from batchrun.plan.render import render_json, render_text

    options = PlanOptions(prune, adopt, confirm_replace, rerun_failed, rerun, reboot_nodes)
    source = sources.single
    if source is None:
        from batchrun.cli.workload_set import PlanSetSettings, plan_set

        plan_set(sources, target, options, PlanSetSettings(output, out, price_file, detailed_exitcode))
        return
    workload = source.load()
    with target.session() as session:
        if out:
            from batchrun.saved_plans import manifest_ref, save_plan

            ref = manifest_ref(source.path, source.variables, source.var_files, source.max_tasks)
            plan = save_plan(session, workload, options, ref, out)
        else:
            plan = plan_with(session, workload, options)
        cost = (
            [] if output == "json" else plan_cost_lines(workload, session.target, price_file_from(price_file))
        )
    if output == "markdown":
        from batchrun.plan.markdown import render_markdown

        click.echo(render_markdown(plan, extra=["", *cost]))
    else:
        click.echo(render_json(plan) if output == "json" else with_cost(render_text(plan), cost))
    if out:
        note(f"Saved the plan to {out}: `batchrun apply {out}` carries out exactly this plan.")
    if detailed_exitcode and plan.blocked:
        # A blocked plan cannot be applied as it is: an error for CI, not "changes pending".
        note("The plan has blocked changes: apply would refuse it (exit 1); see the lines marked '!'.")
        sys.exit(exit_codes.ERROR)
    if detailed_exitcode and plan.has_changes:
        sys.exit(exit_codes.CHANGES_PRESENT)


@click.command("apply")
@common_options
@plan_options
@click.option("--auto-approve", is_flag=True, help="Apply without asking (for CI).")
@click.option(
    "--wait", "wait_for_job", is_flag=True, help="After applying, wait for the job like `batchrun wait`."
)
@timeout_option
@click.option("--no-color", is_flag=True, help="No colour in --wait progress (also NO_COLOR).")
@click.option("--break-lock", is_flag=True, help="Break the workload's apply lock first (holder gone).")
def apply_command(
    sources: ManifestSet,
    target: TargetChoice,
    confirm_replace: bool,
    prune: bool,
    adopt: bool,
    rerun_failed: bool,
    rerun: tuple[str, ...],
    reboot_nodes: bool,
    auto_approve: bool,
    wait_for_job: bool,
    timeout: float | None,
    no_color: bool,
    break_lock: bool,
) -> None:
    """Make Batch and Storage match the manifest (or carry out a plan saved by `plan -out FILE`)."""
    from batchrun.api import execute, lock_ahead, plan_with
    from batchrun.cli.approval import Progress, approve, done_line, resolve_blocked
    from batchrun.cli.workload_set import apply_saved_set, apply_set
    from batchrun.plan.decide_common import PlanOptions
    from batchrun.plan.render import render_text
    from batchrun.saved_plans import check_saved_plan, load_planned_manifest, read_saved_plans

    options = PlanOptions(prune, adopt, confirm_replace, rerun_failed, rerun, reboot_nodes)
    wait = _waiter(timeout, no_color) if wait_for_job else None
    source = sources.single
    if source is None:
        saved_among = [p for p in sources.paths if p.is_file() and read_saved_plans(p) is not None]
        if saved_among:
            raise PlanError(
                f"{saved_among[0]} is a saved plan: apply it alone (`batchrun apply {saved_among[0]}`)."
            )
        apply_set(sources, target, options, auto_approve, wait, break_lock)
        return
    saved_set = read_saved_plans(source.path)
    if saved_set is not None and len(saved_set) > 1:
        apply_saved_set(sources, saved_set, target, options, wait, break_lock)
        return
    saved = saved_set[0] if saved_set else None
    if saved:  # hints name the manifest: a saved plan cannot be applied twice
        workload = load_planned_manifest(saved, source.variables, source.var_files)
        planned_files = tuple(Path(p) for p in saved.manifest.var_files)
        source = replace(source, path=workload.manifest_path, var_files=source.var_files or planned_files)
    else:
        workload = source.load()
    with target.session() as session, lock_ahead(session, workload, break_lock) as ahead:
        if saved:  # reviewed already: applied without asking, or refused when anything moved
            plan = check_saved_plan(session, saved, workload, options)
            auto_approve = True
        else:  # an apply sure to write takes its lock while it decides (held while it asks, if it asks)
            plan = plan_with(session, workload, options, ahead=ahead)
        click.echo(render_text(plan))
        plan = resolve_blocked(
            plan,
            lambda: plan_with(session, workload, replace(options, confirm_replace=True)),
            auto_approve,
        )
        if plan.has_changes:
            approve(auto_approve, "Apply these changes?")
            note("Applying ...")
            with _rerun_hint_on_interrupt("apply", source):
                execute(session, plan, Progress(), ahead=ahead)
            note("Apply complete: " + done_line(plan))
        else:
            note("Nothing to apply.")
        if wait_for_job:
            _wait(session, workload, source, timeout, no_color)


@contextmanager
def _rerun_hint_on_interrupt(verb: str, source: ManifestInput) -> Iterator[None]:
    """Ctrl-C, or a target that stops answering, ends the run part-way: say that what was done is kept and
    that a re-run (the same manifest and variables) finishes."""
    rerun = f"Run `batchrun {verb}` again to finish (it does only what is left): {source.command(verb)}"
    try:
        yield
    except KeyboardInterrupt:
        note(f"{verb.capitalize()} interrupted: the steps done so far are kept. {rerun}")
        raise
    except TargetUnreachableError as error:
        raise TargetUnreachableError(
            f"{error}\n{verb.capitalize()} stopped part-way; the steps done so far are kept. {rerun}"
        ) from error


def _wait(
    session: Session, workload: Workload, source: ManifestInput, timeout: float | None, no_color: bool
) -> None:
    from batchrun.azure.usage import usage_report
    from batchrun.cli.logs import show_start_task_failure
    from batchrun.watch import output_settings, wait_for_workload

    if workload.schedule is not None:
        status = source.command("status")
        note(
            f"The workload runs on a schedule, so there is no one job to wait for: `{status}` shows its runs."
        )
        return
    with job_keeps_running_on_interrupt(source):
        result = wait_for_workload(
            session.clients, workload, timeout=timeout, output=output_settings("text", no_color)
        )
        show_start_task_failure(session.clients, result, source)
        for line in usage_report(session.clients, workload):
            note(line)
    if result.exit_code:
        sys.exit(result.exit_code)


def _waiter(timeout: float | None, no_color: bool) -> Callable[[Session, Sequence[Workload]], int]:
    """``apply --wait`` of several workloads: each job in turn; the first non-zero exit code wins."""

    def wait(session: Session, workloads: Sequence[Workload]) -> int:
        from batchrun.azure.usage import usage_report
        from batchrun.watch import output_settings, wait_for_workload

        codes = []
        for workload in workloads:
            if workload.job is None:
                continue
            if workload.schedule is not None:
                note(f"Not waiting for {workload.name}: it runs on a schedule (status shows its runs).")
                continue
            jobs = ", ".join(f"job {job.id}" for job in workload.jobs)
            note(f"Waiting for workload {workload.name} ({jobs}) ...")
            result = wait_for_workload(
                session.clients, workload, timeout=timeout, output=output_settings("text", no_color)
            )
            for line in usage_report(session.clients, workload):
                note(line)
            codes.append(result.exit_code)
        return next((code for code in codes if code), 0)

    return wait


@click.command("destroy")
@common_options
@plain_text_option
@click.option("--auto-approve", is_flag=True, help="Delete without asking (for CI).")
@click.option("--containers", is_flag=True, help="Also delete the manifest's storage containers.")
@click.option("--break-lock", is_flag=True, help="Break the workload's apply lock first (holder gone).")
def destroy_command(
    sources: ManifestSet,
    target: TargetChoice,
    confirm_replace: bool,
    auto_approve: bool,
    containers: bool,
    break_lock: bool,
) -> None:
    """Delete what the manifest owns: the job (with its tasks) and the pool; containers with --containers.

    Several manifests, or folders of them, are destroyed as one (jobs before the pools they run on)."""
    from batchrun.api import destroy_plan_with, execute
    from batchrun.cli.approval import Progress, approve, done_line, resolve_blocked
    from batchrun.cli.workload_set import destroy_set
    from batchrun.plan.decide_common import PlanOptions
    from batchrun.plan.render import render_text

    source = sources.single
    if source is None:
        destroy_set(sources, target, confirm_replace, auto_approve, containers, break_lock)
        return
    workload = source.load()
    with target.session() as session:
        plan = destroy_plan_with(session, workload, PlanOptions(confirm_replace=confirm_replace), containers)
        click.echo(render_text(plan, destroy=True))
        plan = resolve_blocked(
            plan,
            lambda: destroy_plan_with(session, workload, PlanOptions(confirm_replace=True), containers),
            auto_approve,
            done="deleted",
        )
        if not plan.has_changes:
            note("Nothing to destroy.")
            return
        approve(auto_approve, "Delete these resources?")
        with _rerun_hint_on_interrupt("destroy", source):
            execute(session, plan, Progress(), break_lock=break_lock, remove_lock=True)
        note("Destroy complete: " + done_line(plan))
