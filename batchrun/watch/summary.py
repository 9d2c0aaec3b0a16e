"""The end-of-wait summary: a table of the outcome and, for failed tasks, exit codes and stderr tails."""

from __future__ import annotations

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from batchrun.watch.console import print_block
from batchrun.watch.progress import format_duration
from batchrun.watch.result import WaitResult
from batchrun.watch.snapshot import FailedNode
from batchrun.watch.text import clean
from batchrun.watch.verdict import Outcome

_OUTCOME_STYLE = {
    Outcome.SUCCEEDED: "bold green",
    Outcome.TASKS_FAILED: "bold red",
    Outcome.POOL_FAILED: "bold red",
    Outcome.TIMEOUT: "bold yellow",
}


def render_summary(console: Console, result: WaitResult) -> None:
    counts = result.counts
    table = Table(
        box=box.SIMPLE, show_header=False, title=f"Workload {result.workload}", title_justify="left"
    )
    table.add_column(style="bold")
    table.add_column()
    table.add_row(
        "Outcome", Text(f"{result.outcome.value} (exit {result.exit_code})", _OUTCOME_STYLE[result.outcome])
    )
    table.add_row("Reason", clean(result.verdict.reason))
    table.add_row("Job", f"{result.job.id} ({result.job.state or 'unknown'})")
    table.add_row(
        "Tasks",
        f"{counts.total} total: {counts.succeeded} succeeded, {counts.failed} failed, "
        f"{counts.running} running, {counts.active} active",
    )
    if result.pool is not None:
        nodes = result.nodes
        node_text = (
            f"{nodes.ready} ready, {nodes.starting} starting, {nodes.failed} failed"
            if nodes is not None
            else f"{result.pool.current_nodes}/{result.pool.target_nodes} nodes"
        )
        table.add_row("Pool", f"{result.pool.id}: {node_text}")
        for error in result.pool.resize_errors:
            table.add_row("Resize error", clean(f"{error.code}: {error.message}"))
    for node in result.failed_nodes:
        table.add_row("Failed node", clean(f"{node.id}: {_node_problem(node)}"))
    table.add_row("Elapsed", format_duration(result.elapsed))
    print_block(console, table)
    if result.failed_tasks:
        render_failed_tasks(console, result)


def _node_problem(node: FailedNode) -> str:
    parts = [node.state]
    if node.start_task_exit_code is not None:
        parts.append(f"start task exit code {node.start_task_exit_code}")
    if node.start_task_failure:
        parts.append(node.start_task_failure)
    parts.extend(node.errors)
    return "; ".join(parts)


def render_failed_tasks(console: Console, result: WaitResult) -> None:
    shown = len(result.failed_tasks)
    title = (
        f"Failed tasks ({shown} of {result.counts.failed})"
        if result.failed_tasks_truncated
        else "Failed tasks"
    )
    table = Table(box=box.SIMPLE_HEAD, title=title, title_justify="left")
    table.add_column("task", no_wrap=True)
    table.add_column("exit", justify="right")
    table.add_column("failure, then the last lines of stderr", overflow="fold")
    for task in result.failed_tasks:
        table.add_row(
            task.id,
            "" if task.exit_code is None else str(task.exit_code),
            failure_text(task.failure_code, task.failure_message, task.stderr_tail),
        )
    print_block(console, table)
    if result.failed_tasks_truncated:
        more = result.counts.failed - shown
        print_block(console, f"... and {more} more; see `batchrun logs FILE --failed`.")


def failure_text(code: str | None, message: str | None, stderr_tail: tuple[str, ...]) -> Text:
    """Why a task failed, whole: Batch's code and message (e.g. which program was not found and how to fix
    it), then the stderr tail, or a note that stderr was empty."""
    text = Text()
    reason = ": ".join(clean(part) for part in (code, message) if part)
    if reason:
        text.append(reason, style="bold")
    tail = clean("\n".join(stderr_tail))
    if reason:
        text.append("\n")
    if tail:
        text.append(tail)
    else:
        text.append("(stderr empty)", style="dim")
    return text
