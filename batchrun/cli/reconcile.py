"""``batchrun plan``, ``batchrun apply`` and ``batchrun destroy``.

The target line and progress go to stderr; the plan (text or ``-o json``) goes to stdout. ``plan
--detailed-exitcode`` exits 0 without changes, 2 with changes, 1 on error or when the plan is blocked.
``apply`` shows the plan and asks before changing anything unless ``--auto-approve``; blocked changes that
only need a confirmation (replacing or deleting a pool or job with work in progress) are asked about on a
terminal, else need ``--confirm-replace``.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import click

from batchrun.api import Session, destroy_plan_with, execute, plan_with
from batchrun.cli import exit_codes
from batchrun.cli.options import output_option, plain_text_option, timeout_option
from batchrun.cli.session import (
    ManifestInput,
    TargetChoice,
    job_keeps_running_on_interrupt,
    manifest_input,
    note,
    target_options,
)
from batchrun.cost.report import plan_cost_lines, price_file_from, with_cost
from batchrun.errors import AbortedError, PlanError, TargetUnreachableError
from batchrun.model import Workload
from batchrun.plan.actions import Plan
from batchrun.plan.decide_common import CONFIRM_FLAG, PlanOptions
from batchrun.plan.markdown import render_markdown
from batchrun.plan.render import blocked_lines, render_json, render_text
from batchrun.saved_plans import (
    check_saved_plan,
    load_planned_manifest,
    manifest_ref,
    read_saved_plan,
    save_plan,
)

F = TypeVar("F", bound=Callable[..., Any])


def common_options(function: F) -> F:
    """MANIFEST, variables, ``--target``, ``-v`` and ``--confirm-replace``: what every write command takes."""
    function = click.option(
        "--confirm-replace",
        is_flag=True,
        help="Allow replacing or deleting a pool or job that has active or running tasks.",
    )(function)
    return manifest_input(target_options(function))


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


def _interactive() -> bool:
    return sys.stdin.isatty()


class _Progress:
    """Prints apply progress on stderr."""

    def step_started(self, address: str, operation: str) -> None:
        note(f"  {address}: {operation} ...")

    def step_finished(self, address: str, operation: str) -> None:
        note(f"  {address}: {operation} done")

    def tasks_progress(self, job_id: str, verb: str, done: int, total: int) -> None:
        note(f"  job/{job_id}: {done}/{total} tasks {verb}")


def _needs_only_confirmation(plan: Plan) -> bool:
    return bool(plan.blocked) and all(CONFIRM_FLAG in change.unblock for change in plan.blocked)


def _blocked_error(plan: Plan, done: str) -> PlanError:
    """Why nothing was changed (``done``: applied or deleted): each blocked change and what unblocks it."""
    return PlanError(
        f"the plan has blocked changes, so nothing was {done}:\n  " + "\n  ".join(blocked_lines(plan.blocked))
    )


def _resolve_blocked(
    plan: Plan, replan: Callable[[], Plan], auto_approve: bool, done: str = "applied"
) -> Plan:
    """Ask about confirmation-only blocks on a terminal; any other block is an error."""
    if not plan.blocked:
        return plan
    if _needs_only_confirmation(plan) and _interactive() and not auto_approve:
        click.echo("")
        for line in blocked_lines(plan.blocked):
            click.echo(f"  {line}")
        answer = click.prompt(
            "Replace or delete these anyway? Only 'yes' is accepted", default="", show_default=False
        )
        if answer.strip() != "yes":
            raise AbortedError("Nothing was changed.")
        return replan()
    raise _blocked_error(plan, done)


def _approve(auto_approve: bool, question: str) -> None:
    if auto_approve:
        return
    if not _interactive():
        raise AbortedError(
            "Not a terminal, so nobody can approve: run again with --auto-approve (e.g. in CI)."
        )
    answer = click.prompt(f"{question} Only 'yes' is accepted", default="", show_default=False)
    if answer.strip() != "yes":
        raise AbortedError("Nothing was changed.")


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
    source: ManifestInput,
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
    """Show what apply would change, Terraform-style (+ create, ~ update, -/+ replace, - delete)."""
    workload = source.load()
    with target.session() as session:
        options = PlanOptions(prune, adopt, confirm_replace, rerun_failed, rerun, reboot_nodes)
        if out:
            ref = manifest_ref(source.path, source.variables, source.var_files, source.max_tasks)
            plan = save_plan(session, workload, options, ref, out)
        else:
            plan = plan_with(session, workload, options)
        cost = (
            [] if output == "json" else plan_cost_lines(workload, session.target, price_file_from(price_file))
        )
    if output == "markdown":
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
    source: ManifestInput,
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
    saved = read_saved_plan(source.path)
    if saved:  # hints name the manifest: a saved plan cannot be applied twice
        workload = load_planned_manifest(saved, source.variables, source.var_files)
        planned_files = tuple(Path(p) for p in saved.manifest.var_files)
        source = replace(source, path=workload.manifest_path, var_files=source.var_files or planned_files)
    else:
        workload = source.load()
    with target.session() as session:
        options = PlanOptions(prune, adopt, confirm_replace, rerun_failed, rerun, reboot_nodes)
        if saved:  # reviewed already: applied without asking, or refused when anything moved
            plan = check_saved_plan(session, saved, workload, options)
            auto_approve = True
        else:
            plan = plan_with(session, workload, options)
        click.echo(render_text(plan))
        plan = _resolve_blocked(
            plan,
            lambda: plan_with(session, workload, replace(options, confirm_replace=True)),
            auto_approve,
        )
        if plan.has_changes:
            _approve(auto_approve, "Apply these changes?")
            note("Applying ...")
            with _rerun_hint_on_interrupt("apply", source):
                execute(session, plan, _Progress(), break_lock=break_lock)
            note("Apply complete: " + _done_line(plan))
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


def _done_line(plan: Plan) -> str:
    counts = plan.counts()
    return (
        f"{counts['create']} created, {counts['update']} updated, {counts['replace']} replaced, "
        f"{counts['delete']} deleted."
    )


def _wait(
    session: Session, workload: Workload, source: ManifestInput, timeout: float | None, no_color: bool
) -> None:
    from batchrun.azure.usage import usage_report
    from batchrun.cli.logs import show_start_task_failure
    from batchrun.watch import output_settings, wait_for_workload

    with job_keeps_running_on_interrupt(source):
        result = wait_for_workload(
            session.clients, workload, timeout=timeout, output=output_settings("text", no_color)
        )
        show_start_task_failure(session.clients, result, source)
        for line in usage_report(session.clients, workload):
            note(line)
    if result.exit_code:
        sys.exit(result.exit_code)


@click.command("destroy")
@common_options
@plain_text_option
@click.option("--auto-approve", is_flag=True, help="Delete without asking (for CI).")
@click.option("--containers", is_flag=True, help="Also delete the manifest's storage containers.")
@click.option("--break-lock", is_flag=True, help="Break the workload's apply lock first (holder gone).")
def destroy_command(
    source: ManifestInput,
    target: TargetChoice,
    confirm_replace: bool,
    auto_approve: bool,
    containers: bool,
    break_lock: bool,
) -> None:
    """Delete what the manifest owns: the job (with its tasks) and the pool; containers with --containers."""
    workload = source.load()
    with target.session() as session:
        plan = destroy_plan_with(session, workload, PlanOptions(confirm_replace=confirm_replace), containers)
        click.echo(render_text(plan, destroy=True))
        plan = _resolve_blocked(
            plan,
            lambda: destroy_plan_with(session, workload, PlanOptions(confirm_replace=True), containers),
            auto_approve,
            done="deleted",
        )
        if not plan.has_changes:
            note("Nothing to destroy.")
            return
        _approve(auto_approve, "Delete these resources?")
        with _rerun_hint_on_interrupt("destroy", source):
            execute(session, plan, _Progress(), break_lock=break_lock)
        note("Destroy complete: " + _done_line(plan))
