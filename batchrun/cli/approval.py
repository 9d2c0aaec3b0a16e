"""What ``apply`` and ``destroy`` share, for one manifest or several: asking before changing anything, what
blocks a plan, and progress lines on stderr."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence

import click

from batchrun.cli.session import note
from batchrun.errors import AbortedError, PlanError
from batchrun.plan.actions import Plan
from batchrun.plan.decide_common import CONFIRM_FLAG
from batchrun.plan.render import blocked_lines


def interactive() -> bool:
    return sys.stdin.isatty()


class Progress:
    """Prints apply progress on stderr."""

    def step_started(self, address: str, operation: str) -> None:
        note(f"  {address}: {operation} ...")

    def step_finished(self, address: str, operation: str) -> None:
        note(f"  {address}: {operation} done")

    def tasks_progress(self, job_id: str, verb: str, done: int, total: int) -> None:
        note(f"  job/{job_id}: {done}/{total} tasks {verb}")


def needs_only_confirmation(plan: Plan) -> bool:
    return bool(plan.blocked) and all(CONFIRM_FLAG in change.unblock for change in plan.blocked)


def blocked_error(plan: Plan, done: str) -> PlanError:
    """Why nothing was changed (``done``: applied or deleted): each blocked change and what unblocks it."""
    return PlanError(
        f"the plan has blocked changes, so nothing was {done}:\n  " + "\n  ".join(blocked_lines(plan.blocked))
    )


def confirm_blocked(lines: Sequence[str]) -> None:
    """Show the blocked changes and ask whether to replace or delete them anyway; anything but yes aborts."""
    click.echo("")
    for line in lines:
        click.echo(f"  {line}")
    answer = click.prompt(
        "Replace or delete these anyway? Only 'yes' is accepted", default="", show_default=False
    )
    if answer.strip() != "yes":
        raise AbortedError("Nothing was changed.")


def resolve_blocked(
    plan: Plan, replan: Callable[[], Plan], auto_approve: bool, done: str = "applied"
) -> Plan:
    """Ask about confirmation-only blocks on a terminal; any other block is an error."""
    if not plan.blocked:
        return plan
    if needs_only_confirmation(plan) and interactive() and not auto_approve:
        confirm_blocked(blocked_lines(plan.blocked))
        return replan()
    raise blocked_error(plan, done)


def approve(auto_approve: bool, question: str) -> None:
    if auto_approve:
        return
    if not interactive():
        raise AbortedError(
            "Not a terminal, so nobody can approve: run again with --auto-approve (e.g. in CI)."
        )
    answer = click.prompt(f"{question} Only 'yes' is accepted", default="", show_default=False)
    if answer.strip() != "yes":
        raise AbortedError("Nothing was changed.")


def done_line(plan: Plan) -> str:
    counts = plan.counts()
    return (
        f"{counts['create']} created, {counts['update']} updated, {counts['replace']} replaced, "
        f"{counts['delete']} deleted."
    )
