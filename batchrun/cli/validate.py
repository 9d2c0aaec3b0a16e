"""``batchrun validate FILE...`` and ``batchrun render FILE``: offline, no Azure account needed."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Literal, cast

import click
from msgspec.structs import asdict

from batchrun.cli.options import (
    manifest_argument,
    manifest_arguments,
    output_option,
    plain_text_option,
    variable_options,
)
from batchrun.errors import ManifestError
from batchrun.manifest import load_workload, render_workload
from batchrun.model import Workload


def _summary(workload: Workload) -> str:
    parts = [f"workload {workload.name}"]
    if workload.inputs:
        parts.append(f"{len(workload.inputs)} storage input(s)")
    if workload.packages:
        parts.append(f"{len(workload.packages)} package(s)")
    if workload.pool is not None:
        parts.append(f"pool {workload.pool.id}")
    for job in workload.jobs:
        parts.append(f"job {job.id} with {len(job.tasks):,} task(s)")
    if workload.schedule is not None:
        parts.append(f"every {workload.schedule.get('recurrenceInterval') or 'once'}")
    return ", ".join(parts)


@click.command("validate")
@manifest_arguments
@variable_options
@output_option(("text", "json"))
@plain_text_option
def validate_command(
    manifests: tuple[Path, ...],
    variables: dict[str, str],
    var_files: tuple[Path, ...],
    max_tasks: int,
    output: str,
) -> None:
    """Check manifests against the schema and batchrun's rules; report every problem with its position.

    Exits 0 when every manifest is valid, 1 otherwise. Needs no Azure account and no network.
    """
    results: list[dict[str, Any]] = []
    failed = False
    for manifest in manifests:
        try:
            workload = load_workload(manifest, variables, var_files, max_tasks)
        except ManifestError as error:
            failed = True
            results.append(
                {"file": str(manifest), "valid": False, "diagnostics": [asdict(d) for d in error.diagnostics]}
            )
            if output == "text":
                click.echo(f"invalid  {manifest}", err=True)
                for diagnostic in error.diagnostics:
                    click.echo(f"  {diagnostic}", err=True)
            continue
        tasks = sum(len(job.tasks) for job in workload.jobs)
        results.append(
            {
                "file": str(manifest),
                "valid": True,
                "name": workload.name,
                "tasks": tasks,
                "digest": workload.digest,
            }
        )
        if output == "text":
            click.echo(f"ok       {manifest}: {_summary(workload)}")
    if output == "json":
        click.echo(json.dumps(results, indent=2))
    if failed:
        sys.exit(1)


@click.command("render")
@manifest_argument
@variable_options
@output_option(("yaml", "json"), default="yaml")
@plain_text_option
def render_command(
    manifest: Path, variables: dict[str, str], var_files: tuple[Path, ...], max_tasks: int, output: str
) -> None:
    """Print the fully expanded desired state (variables substituted, factories expanded, defaults filled in).

    This is what `apply` would make Batch match: commit it or diff it in review.
    """
    workload = load_workload(manifest, variables, var_files, max_tasks)
    click.echo(render_workload(workload, cast(Literal["yaml", "json"], output)), nl=False)
