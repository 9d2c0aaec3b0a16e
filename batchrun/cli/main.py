"""Entry point of the ``batchrun`` command: a click group whose subcommands live in sibling modules.

Subcommands are imported only when invoked, so ``batchrun validate`` never pays for the Azure SDK imports.
Every :class:`~batchrun.errors.BatchrunError` becomes its message on stderr and its exit code, never
a traceback. A finished command leaves the process at once (:mod:`batchrun.cli.quick_exit`).
"""

from __future__ import annotations

import importlib
import sys
from typing import Any

import click

from batchrun.cli.quick_exit import exit_now
from batchrun.cli.start_up import StartUp
from batchrun.errors import BatchrunError

# name -> "module:attribute" of a click.Command; one line per command, owned by the module that defines it.
COMMANDS: dict[str, str] = {
    "validate": "batchrun.cli.validate:validate_command",
    "render": "batchrun.cli.validate:render_command",
    "wait": "batchrun.cli.operate:wait_command",
    "status": "batchrun.cli.operate:status_command",
    "logs": "batchrun.cli.logs:logs_command",
    "outputs": "batchrun.cli.operate:outputs_command",
    "local": "batchrun.cli.local:local_command",
    "plan": "batchrun.cli.reconcile:plan_command",
    "apply": "batchrun.cli.reconcile:apply_command",
    "destroy": "batchrun.cli.reconcile:destroy_command",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attribute = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attribute)
        return command

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except BatchrunError as error:
            click.echo(f"Error: {error}", err=True)
            sys.exit(error.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted.", err=True)
            sys.exit(130)


@click.group(
    cls=LazyGroup, invoke_without_command=True, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="batchrun")
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Declarative workload runner for Azure Batch.

    Shell completion: eval "$(_BATCHRUN_COMPLETE=bash_source batchrun)" in ~/.bashrc (zsh_source and
    fish_source for zsh and fish).
    """
    if ctx.invoked_subcommand is None:  # plain `batchrun`: the help on stdout, and success
        click.echo(ctx.get_help())


def main() -> None:
    start_up = StartUp.begin()  # the garbage collector is off until the command has started
    try:
        cli(prog_name="batchrun", obj=start_up)
    except SystemExit as done:  # click ends every command so: left at once, without Python's teardown
        exit_now(done.code)
        raise
    finally:
        start_up.finish()


if __name__ == "__main__":
    main()
