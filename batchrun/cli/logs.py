"""``batchrun logs``: a task's stdout or stderr (whole, its tail, or followed), every failed task's failure
and stderr tail, the pool's start task output; and the start task output shown after a pool failure.

Like the other read commands it never writes to Batch; task output is decoded incrementally and printed
without the target's secrets.
"""

from __future__ import annotations

import codecs
import json
import sys
from typing import TYPE_CHECKING, Any

import click

from batchrun.cli.operate import connected, manifest_lacks, read_options
from batchrun.cli.session import ManifestInput, TargetChoice, note
from batchrun.errors import ConfigurationError
from batchrun.model import Workload

if TYPE_CHECKING:
    from batchrun.azure.clients import Clients
    from batchrun.watch.result import WaitResult


def show_start_task_failure(
    clients: Clients, result: WaitResult, source: ManifestInput, lines: int = 10
) -> None:
    """After a pool failure, the end of the failed start task's stderr and stdout on the first failed node,
    and the command that shows them whole: a failing start task is not a dead end."""
    from batchrun.azure.monitor import BatchMonitor
    from batchrun.watch import Outcome
    from batchrun.watch.logs import start_task_tail

    if result.outcome is not Outcome.POOL_FAILED or result.pool is None or not result.failed_nodes:
        return
    node = result.failed_nodes[0]
    if node.start_task_exit_code is None and not node.start_task_failure:
        return  # the node failed for another reason (its errors are in the summary)
    monitor = BatchMonitor(clients.batch)
    for name in ("stderr.txt", "stdout.txt"):
        tail = start_task_tail(monitor, result.pool.id, node.id, name, lines)
        click.echo(f"\nStart task on node {node.id}: last {lines} lines of startup/{name}")
        click.echo("\n".join(tail) if tail else "(empty)" if tail is not None else "(not on the node)")
    click.echo(f"\nWhole files: `{source.command('logs')} --start-task [--stderr]`")


def _require_jobs(workload: Workload) -> list[str]:
    if workload.job is None:
        raise manifest_lacks(
            workload,
            "the manifest defines no job, so it has no task logs",
            "add a job with tasks to the manifest",
        )
    return [job.id for job in workload.jobs]


def _latest_run(monitor: Any, workload: Workload) -> str:
    """A scheduled workload's logs are those of its latest run (the schedule's newest job)."""
    assert workload.job is not None
    schedule = monitor.schedule(workload.job.id, runs=1)
    if not schedule.exists or not schedule.runs:
        from batchrun.errors import TargetError

        raise TargetError(
            f"jobschedule/{workload.job.id} has no run yet on the target: apply the manifest, then wait for "
            "its first run (`batchrun status FILE` shows the next run time)."
        )
    note(f"Logs of the schedule's latest run, job {schedule.runs[0][0]}.")
    return str(schedule.runs[0][0])


def _job_of(workload: Workload, task: str) -> str:
    """The job holding ``task`` (task ids are unique across a workload's jobs); the first job otherwise."""
    holder = workload.job_of_task(task)
    return holder.id if holder is not None else _require_jobs(workload)[0]


class _TextSink:
    """Decodes task output incrementally (multi-byte characters may straddle reads) and prints it redacted."""

    def __init__(self, secrets: tuple[str, ...]) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._secrets = secrets
        self.parts: list[str] = []

    def decode(self, data: bytes) -> str:
        from batchrun.redact import redact

        return redact(self._decoder.decode(data), *self._secrets)

    def echo(self, data: bytes) -> None:
        sys.stdout.write(self.decode(data))
        sys.stdout.flush()

    def collect(self, data: bytes) -> None:
        self.parts.append(self.decode(data))


@click.command("logs")
@read_options
@click.argument("task", required=False)
@click.option("--stderr", "use_stderr", is_flag=True, help="Show stderr.txt instead of stdout.txt.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what the task writes until it completes.")
@click.option("--tail", "tail_lines", type=click.IntRange(min=0), default=None, help="Only the last N lines.")
@click.option("--failed", is_flag=True, help="The stderr tail of every failed task (first --limit of them).")
@click.option(
    "--limit",
    type=click.IntRange(min=1, max=1000),
    default=100,
    show_default=True,
    help="With --failed: at most this many tasks.",
)
@click.option(
    "--start-task",
    is_flag=True,
    help="The pool's start task output (stdout, or --stderr) on the first node where it failed, or --node.",
)
@click.option("--node", "node_id", default=None, metavar="NODE", help="With --start-task: this node's.")
def logs_command(
    source: ManifestInput,
    output: str,
    target: TargetChoice,
    no_color: bool,
    task: str | None,
    use_stderr: bool,
    follow: bool,
    tail_lines: int | None,
    failed: bool,
    limit: int,
    start_task: bool,
    node_id: str | None,
) -> None:
    """Print a task's stdout (or --stderr), optionally following it; --failed: every failed task's tail;
    --start-task: the pool's start task output on a node."""
    from batchrun.azure.monitor import BatchMonitor
    from batchrun.watch import logs

    if start_task:
        if failed or task is not None or follow:
            raise ConfigurationError("--start-task takes no TASK id and no --failed or --follow.")
        name = "stderr.txt" if use_stderr else "stdout.txt"
        _print_start_task(source, target, name, node_id, tail_lines, output)
        return
    if node_id is not None:
        raise ConfigurationError(
            "--node goes with --start-task: `batchrun logs FILE --start-task --node ID`."
        )
    if failed == (task is not None):
        raise ConfigurationError(
            "Give either a TASK id, --failed or --start-task: e.g. `batchrun logs FILE t1`."
        )
    if follow and (failed or output == "json"):
        raise ConfigurationError(
            "--follow prints text as it arrives; it cannot be combined with --failed or -o json."
        )
    workload = source.load()
    job_ids = _require_jobs(workload)
    name = "stderr.txt" if use_stderr or failed else "stdout.txt"
    with connected(target) as clients:
        monitor = BatchMonitor(clients.batch)
        latest = _latest_run(monitor, workload) if workload.schedule is not None else None
        if latest is not None:
            job_ids = [latest]
        if failed:
            lines = 20 if tail_lines is None else tail_lines
            documents = []
            for index, each in enumerate(job_ids):
                if index and output != "json":
                    click.echo("")
                if len(job_ids) > 1 and not monitor.job(each).exists:  # one missing job hides no other
                    note(f"job/{each} does not exist on the target (not applied yet, or deleted).")
                    documents.append({"job": each, "exists": False})
                    continue
                documents.append(_print_failed(monitor, each, name, lines, limit, output))
            if output == "json":  # one document; a workload with several jobs lists each
                shown = documents[0] if len(documents) == 1 else {"jobs": documents}
                click.echo(json.dumps(shown, indent=2))
            return
        assert task is not None
        job_id = latest or _job_of(workload, task)
        sink = _TextSink(clients.target.secrets())
        write = sink.collect if output == "json" else sink.echo
        kept = (
            None if monitor.task(job_id, task).exists else logs.kept_log(clients, workload.name, task, name)
        )
        if kept is not None:  # a result carried over from an earlier job: its logs were kept in storage
            write(logs.last_lines(kept, tail_lines))
            if output == "json":
                click.echo(
                    json.dumps(
                        {
                            "job": job_id,
                            "task": task,
                            "file": name,
                            "kept": True,
                            "size": len(kept),
                            "content": "".join(sink.parts),
                        },
                        indent=2,
                    )
                )
            else:
                note(f"task/{job_id}/{task} ran in an earlier job; this is the {name} kept from that run.")
            return
        detail = logs.require_task(monitor, job_id, task)
        size = monitor.file_size(job_id, task, name)
        offset = 0
        if size is not None and tail_lines is not None:
            part = monitor.tail(job_id, task, name, tail_lines)
            write(part.data)
            offset = part.size
        elif size is not None:
            offset = logs.read_range(monitor, job_id, task, name, 0, size, write)
        if follow:
            detail = logs.follow(monitor, job_id, task, name, offset, write)
        elif size is None and output != "json":
            note(f"task/{job_id}/{task} has not written {name} yet (state: {detail.state}); try --follow.")
        elif size == 0 and output != "json":
            note(f"task/{job_id}/{task} wrote nothing to {name} (state: {detail.state}).")
    if output == "json":
        click.echo(
            json.dumps(
                {
                    "job": job_id,
                    "task": task,
                    "file": name,
                    "exists": size is not None,
                    "size": size,
                    "state": detail.state or None,
                    "exitCode": detail.exit_code,
                    "result": detail.result,
                    "content": "".join(sink.parts),
                },
                indent=2,
            )
        )


START_TASK_WHOLE_BYTES = 16 * 1024 * 1024  # `logs --start-task` without --tail: at most this much, the end


def _print_start_task(
    source: ManifestInput,
    target: TargetChoice,
    name: str,
    node_id: str | None,
    tail_lines: int | None,
    output: str,
) -> None:
    from batchrun.azure.monitor import BatchMonitor
    from batchrun.errors import TargetError
    from batchrun.watch.logs import START_TASK_FILES

    workload = source.load()
    if workload.pool is None:
        raise manifest_lacks(workload, "the manifest defines no pool, so it has no start task", "add a pool")
    pool_id = workload.pool.id
    with connected(target) as clients:
        monitor = BatchMonitor(clients.batch)
        if not monitor.pool(pool_id).exists:
            raise TargetError(f"pool/{pool_id} does not exist on the target: apply the manifest first.")
        if node_id is None:
            failed = [n for n in monitor.failed_nodes(pool_id, 10) if n.start_task_exit_code is not None]
            if not failed:
                raise TargetError(
                    f"no node of pool/{pool_id} has a failed start task; name a node with --node ID."
                )
            node_id = failed[0].id
        path = START_TASK_FILES[name]
        part = (
            monitor.node_file_tail(pool_id, node_id, path, sys.maxsize, max_bytes=START_TASK_WHOLE_BYTES)
            if tail_lines is None
            else monitor.node_file_tail(pool_id, node_id, path, tail_lines)
        )
        if part is None:
            raise TargetError(f"node {node_id} of pool/{pool_id} has no {path} (gone, or no start task).")
        text = _TextSink(clients.target.secrets()).decode(part.data)
        if output == "json":
            document = {"pool": pool_id, "node": node_id, "file": path, "size": part.size, "content": text}
            click.echo(json.dumps(document | {"start": part.start}, indent=2))
            return
        note(f"Start task of pool/{pool_id} on node {node_id}: {path}")
        if tail_lines is None and part.start > 0:
            note(f"(the first {part.start} of {part.size} bytes are left out; --tail N shows the end)")
        sys.stdout.write(text)
        sys.stdout.flush()


def _print_failed(
    monitor: Any, job_id: str, name: str, lines: int, limit: int, output: str
) -> dict[str, Any]:
    """Print the failed tasks' tails of one job (text), or return them as a JSON document."""
    from batchrun.errors import TargetError
    from batchrun.watch.logs import failed_task_tails
    from batchrun.watch.text import clean

    if not monitor.job(job_id).exists:  # as for `logs FILE TASK`: no job is not "no failed tasks"
        raise TargetError(
            f"job/{job_id} does not exist on the target: apply the manifest first (batchrun apply FILE)."
        )
    counts = monitor.task_counts(job_id)
    tails = failed_task_tails(monitor, job_id, name, lines, limit)
    if output == "json":
        document = {
            "job": job_id,
            "file": name,
            "failedTotal": counts.failed,
            "truncated": counts.failed > len(tails),
            "tasks": [
                {
                    "id": t.id,
                    "exitCode": t.exit_code,
                    "failureCode": t.failure_code,
                    "failureMessage": t.failure_message,
                    "lines": list(t.stderr_tail),
                }
                for t in tails
            ],
        }
        return document
    if not tails:
        click.echo(f"No failed tasks in job/{job_id}.")
        return {}
    for index, t in enumerate(tails):
        if index:
            click.echo("")
        exit_text = "" if t.exit_code is None else f"exit {t.exit_code}, "
        click.echo(
            f"==> task {t.id} ({exit_text}{t.failure_code or 'failed'}): last {lines} lines of {name} <=="
        )
        if t.failure_message:  # Batch's own explanation, e.g. which program was not found and what to do
            click.echo(f"{t.failure_code or 'failure'}: {clean(t.failure_message)}")
        for line in t.stderr_tail:
            click.echo(line)
        if not t.stderr_tail:
            click.echo(f"({name} is empty)")
    if counts.failed > len(tails):
        click.echo(f"\n... {counts.failed - len(tails)} more failed task(s); raise --limit to see more.")
    return {}
