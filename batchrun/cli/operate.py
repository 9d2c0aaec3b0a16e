"""Commands for operating an applied workload: ``wait``, ``status`` and ``outputs`` (``logs`` is in cli.logs).

Each reads the manifest (for the ids and the digest), resolves the target, and reads live state; none writes
to Batch. ``-o json`` prints one JSON document on stdout (fields documented in docs/operate.md); progress
and the target line go to stderr so stdout stays parseable.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from batchrun.cli.options import output_option, timeout_option
from batchrun.cli.session import (
    ManifestInput,
    ManifestSet,
    TargetChoice,
    job_keeps_running_on_interrupt,
    manifest_input,
    manifest_set_input,
    target_options,
)
from batchrun.errors import Diagnostic, ManifestError
from batchrun.model import Workload

if TYPE_CHECKING:
    from batchrun.azure.clients import Clients

F = TypeVar("F", bound=Callable[..., Any])


def read_options(function: F) -> F:
    """Manifest, variables, ``-o``, ``--target``, ``-v`` and ``--no-color``: what every read command takes."""
    function = click.option("--no-color", is_flag=True, help="No colour even on a terminal (also NO_COLOR).")(
        function
    )
    return manifest_input(output_option(("text", "json"))(target_options(function)))


@contextmanager
def connected(target: TargetChoice) -> Iterator[Clients]:
    """The target's SDK clients, closed on exit; the target line and ``-v`` request lines go to stderr."""
    with target.session() as session:
        yield session.clients


@click.command("wait")
@read_options
@timeout_option
@click.option(
    "--poll-interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="Seconds between two polls (each poll is three requests whatever the job's size).",
)
@click.pass_context
def wait_command(
    ctx: click.Context,
    source: ManifestInput,
    output: str,
    target: TargetChoice,
    no_color: bool,
    timeout: float | None,
    poll_interval: float,
) -> None:
    """Wait for an applied workload's job to finish, with live progress; exit 0 only if every task succeeded.

    Exit codes: 0 all tasks succeeded, 3 tasks failed, 4 the pool cannot get usable nodes, 5 --timeout
    elapsed.
    """
    from batchrun.azure.usage import usage_report
    from batchrun.watch import WaitSettings, output_settings, wait_for_workload

    workload = source.load()
    if workload.schedule is not None and workload.job is not None:
        raise manifest_lacks(
            workload,
            f"the workload runs on a schedule (jobschedule/{workload.job.id}): each run is a job of its own, "
            "so there is no one job to wait for",
            f"`{source.command('status')}` shows the schedule's runs",
        )
    with connected(target) as clients, job_keeps_running_on_interrupt(source):
        result = wait_for_workload(
            clients,
            workload,
            timeout=timeout,
            output=output_settings(output, no_color),
            settings=WaitSettings(poll_interval=poll_interval),
        )
        if output == "text":
            from batchrun.cli.logs import show_start_task_failure

            show_start_task_failure(clients, result, source)
            for line in usage_report(clients, workload):
                click.echo(line, err=True)
    ctx.exit(result.exit_code)


@click.command("status")
@click.option("--no-color", is_flag=True, help="No colour even on a terminal (also NO_COLOR).")
@manifest_set_input
@output_option(("text", "json"))
@target_options
def status_command(
    sources: ManifestSet,
    output: str,
    target: TargetChoice,
    no_color: bool,
) -> None:
    """Show what is live for a manifest: pool, nodes, job, task counts, revision, and whether live differs.

    Several manifests, or folders of them, show each workload in turn (JSON: {"workloads": [...]})."""
    from batchrun.azure.monitor import BatchMonitor
    from batchrun.azure.results import read_record
    from batchrun.azure.usage import usage_document, usage_report
    from batchrun.watch import output_settings
    from batchrun.watch.status import read_status, render_status

    source = sources.single
    if source is None:
        from batchrun.cli.workload_set import status_set

        status_set(sources, output, target, no_color)
        return
    workload = source.load()
    with connected(target) as clients:
        results = read_record(clients.blob, workload.name).results if workload.job is not None else {}
        status = read_status(BatchMonitor(clients.batch), workload, results)
        usage = usage_report(clients, workload) if output == "text" else []
        hours = usage_document(clients, workload) if output == "json" else None
    if output == "json":
        click.echo(json.dumps(status.to_json() | {"nodeHours": hours}, indent=2))
    else:
        render_status(output_settings(output, no_color).console(), status)
        for line in usage:
            click.echo(line)


def manifest_lacks(workload: Workload, message: str, hint: str) -> ManifestError:
    """The manifest has no section the command needs (the whole file is the position)."""
    return ManifestError(
        [Diagnostic(file=str(workload.manifest_path), line=0, column=0, message=message, hint=hint)]
    )


@click.command("outputs")
@read_options
@click.option(
    "-d",
    "--dir",
    "directory",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="Folder to download into (default: outputs/<workload name>).",
)
def outputs_command(
    source: ManifestInput,
    output: str,
    target: TargetChoice,
    no_color: bool,
    directory: Path | None,
) -> None:
    """Download the workload's outputs container, skipping files already present with the same content."""
    from batchrun.azure.monitor import OutputStore
    from batchrun.watch.outputs import download_outputs

    workload = source.load()
    if workload.outputs is None:
        raise manifest_lacks(
            workload,
            "the manifest declares no outputs container, so there is nothing to download",
            "add `outputs: {container: NAME}` and task outputs to the manifest",
        )
    target_dir = directory if directory is not None else Path("outputs") / workload.name
    with connected(target) as clients:
        result = download_outputs(OutputStore(clients.blob), workload.outputs.container, target_dir)
    if output == "json":
        click.echo(json.dumps(result.to_json(), indent=2))
        return
    if not result.container_exists:
        click.echo(f"No outputs yet: container {result.container} does not exist (no task has uploaded).")
        return
    for file in result.files:
        where = file.path if file.path is not None else "(refused: the name leaves the folder)"
        click.echo(f"  {file.action:<10} {file.blob} -> {where} ({file.size} bytes)")
    click.echo(
        f"{result.count('downloaded')} downloaded, {result.count('unchanged')} unchanged"
        + (f", {result.count('refused')} refused" if result.count("refused") else "")
        + f" in {result.directory.resolve()}"
    )
