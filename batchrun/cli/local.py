"""``batchrun local up|down|status|reset``: the embedded local Azure Batch (emulator + Azurite) as a daemon.

``up`` prints the endpoint, the account name and key and the storage connection details (users need the key
to point the Azure SDK at the local target). ``status`` shows no secret unless ``--show-secrets`` is given.
"""

from __future__ import annotations

import json
import sys
import time

import click

from batchrun.cli.options import output_option, plain_text_option
from batchrun.errors import AbortedError
from batchrun.local.paths import LocalPaths
from batchrun.local.target import (
    LocalStatus,
    LocalTarget,
    default_home,
    reset,
    running_target,
    start,
    status,
    stop,
)


@click.group("local")
def local_command() -> None:
    """Run the local Azure Batch target (emulator + Azurite) in the background."""


@local_command.command("up")
@plain_text_option
def up_command() -> None:
    """Start the local target (or show the running one) and print how to connect to it."""
    home = default_home()
    was_running = status(home).running
    began = time.monotonic()
    if not was_running:
        click.echo(f"Starting the local target (emulator + Azurite) in {home / 'local'} ...", err=True)
    target = start(home, announce=lambda line: click.echo(line, err=True))
    if was_running:
        click.echo(f"Local target already running (state in {home / 'local'}).")
    else:
        click.echo(f"Local target started in {time.monotonic() - began:.1f} s (state in {home / 'local'}).")
    click.echo(_connection_details(target))


@local_command.command("down")
@plain_text_option
def down_command() -> None:
    """Stop the local target; pools, jobs, tasks and blobs are kept for the next start."""
    home = default_home()
    if stop(home):
        click.echo("Local target stopped; its state is kept (run 'batchrun local up' to start it again).")
    else:
        click.echo("Local target was not running.")


@local_command.command("status")
@output_option(choices=("text", "json"))
@plain_text_option
@click.option("--show-secrets", is_flag=True, help="Also print the account key and the storage key.")
def status_command(output: str, show_secrets: bool) -> None:
    """Show whether the local target runs, its endpoints, pids and task concurrency cap."""
    home = default_home()
    state = status(home)
    target = running_target(home) if show_secrets else None
    if output == "json":
        data = state.to_json()
        data["logsDir"] = str(LocalPaths(home).logs_dir)
        if target is not None:
            data.update(
                accountKey=target.account_key,
                storageAccountKey=target.storage_account_key,
                connectionString=target.connection_string,
            )
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(_status_text(state))
    if target is not None:
        click.echo(f"  Batch account key:  {target.account_key}")
        click.echo(f"  Storage key:        {target.storage_account_key}")


@local_command.command("reset")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@plain_text_option
def reset_command(yes: bool) -> None:
    """Stop the local target and delete its state (pools, jobs, tasks, blobs); Azurite stays installed."""
    home = default_home()
    if not yes:
        if not sys.stdin.isatty():
            raise AbortedError("Not a terminal, so nobody can confirm: run again with --yes. Nothing deleted")
        # The same answer apply and destroy want: only 'yes' deletes.
        answer = click.prompt(
            f"Delete every pool, job, task and blob of the local target in {home / 'local'}? "
            "Only 'yes' is accepted",
            default="",
            show_default=False,
        )
        if answer.strip() != "yes":
            raise AbortedError("Nothing was deleted.")
    reset(home)
    click.echo("Local target reset: stopped and state deleted (account key and Azurite install kept).")


def _connection_details(target: LocalTarget) -> str:
    return "\n".join(
        [
            f"  Batch endpoint:     {target.batch_url}",
            f"  Batch account:      {target.account_name}",
            f"  Batch account key:  {target.account_key}",
            f"  Storage endpoint:   {target.blob_endpoint}",
            f"  Storage account:    {target.storage_account_name}",
            f"  Storage key:        {target.storage_account_key}",
            "",
            "batchrun commands use this target by default. To point your own Azure SDK scripts at it:",
            f"  export AZURE_BATCH_ENDPOINT={target.batch_url}",
            f"  export AZURE_BATCH_ACCOUNT={target.account_name}",
            f"  export AZURE_BATCH_ACCESS_KEY={target.account_key}",
            f"  export AZURE_STORAGE_CONNECTION_STRING='{target.connection_string}'",
            "(batchrun recognises this endpoint as its local target: these change nothing for it.)",
        ]
    )


def _status_text(state: LocalStatus) -> str:
    if state.running:
        head = f"Local target running since {state.started_at} (state in {state.home / 'local'})."
    elif state.emulator_running or state.azurite_running:
        alive = "the emulator" if state.emulator_running else "Azurite"
        head = (
            f"Local target is not healthy: only {alive} runs; run 'batchrun local up' to restart it "
            "(or 'batchrun local down')."
        )
    else:
        return (
            f"Local target not running (state in {state.home / 'local'}); start it: 'batchrun local up'.\n"
            f"  Logs:               {LocalPaths(state.home).logs_dir}"
        )
    lines = [head]
    if state.batch_url:
        lines.append(f"  Batch endpoint:     {state.batch_url}  (pid {state.emulator_pid})")
    if state.blob_endpoint:
        lines.append(f"  Storage endpoint:   {state.blob_endpoint}  (Azurite, pid {state.azurite_pid})")
    lines.append(f"  Batch account:      {state.account_name}")
    lines.append(f"  Storage account:    {state.storage_account_name}")
    if state.max_running_tasks:
        lines.append(f"  Concurrency cap:    {state.max_running_tasks} running tasks (BATCHRUN_LOCAL_SLOTS)")
    lines.append(f"  Logs:               {LocalPaths(state.home).logs_dir}")
    return "\n".join(lines)
