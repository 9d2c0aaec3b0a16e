"""Click options shared by every command that reads a manifest.

Usage in a command module::

    from batchrun.cli.options import manifest_argument, output_option, variable_options

    @click.command()
    @manifest_argument
    @variable_options
    @output_option()
    def plan(manifest: Path, variables: dict[str, str], var_files: tuple[Path, ...], max_tasks: int,
             output: str) -> None:
        workload = load_workload(manifest, variables, var_files, max_tasks)

Paths are not checked by click: a missing file, a directory or an unreadable file becomes a
:class:`~batchrun.errors.ManifestError` from the loader (exit 1, with a position), never a click usage error.
A malformed ``--var`` raises :class:`~batchrun.errors.ManifestError` too, so every bad input exits with 1.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from batchrun.errors import Diagnostic, ManifestError

DEFAULT_MAX_TASKS = 100_000
MAX_TASKS_ENVVAR = "BATCHRUN_MAX_TASKS"

F = TypeVar("F", bound=Callable[..., Any])


def parse_variable_assignments(assignments: Sequence[str]) -> dict[str, str]:
    """Turn ``["name=value", ...]`` into a mapping; later assignments of a name win."""
    variables: dict[str, str] = {}
    problems: list[Diagnostic] = []
    for assignment in assignments:
        name, separator, value = assignment.partition("=")
        name = name.strip()
        if not separator or not name:
            problems.append(
                Diagnostic(
                    file="--var",
                    line=0,
                    column=0,
                    message=f"{assignment!r} is not an assignment",
                    hint="write --var name=value, e.g. --var count=10",
                )
            )
            continue
        variables[name] = value
    if problems:
        raise ManifestError(problems)
    return variables


def _variables_callback(ctx: click.Context, param: click.Parameter, value: tuple[str, ...]) -> dict[str, str]:
    return parse_variable_assignments(value)


def manifest_argument(function: F) -> F:
    """One manifest file, passed to the command as ``manifest: Path``."""
    return click.argument("manifest", type=click.Path(path_type=Path))(function)


def manifest_arguments(function: F) -> F:
    """One or more manifest files, passed as ``manifests: tuple[Path, ...]``."""
    return click.argument("manifests", nargs=-1, required=True, type=click.Path(path_type=Path))(function)


def variable_options(function: F) -> F:
    """``--var name=value`` (repeatable), ``--var-file FILE`` (repeatable) and ``--max-tasks N``.

    Passed to the command as ``variables: dict[str, str]``, ``var_files: tuple[Path, ...]`` and
    ``max_tasks: int``.
    Precedence: manifest ``variables`` < each ``--var-file`` in order < ``--var``.
    """
    function = click.option(
        "--max-tasks",
        "max_tasks",
        type=click.IntRange(min=1),
        default=DEFAULT_MAX_TASKS,
        show_default=True,
        envvar=MAX_TASKS_ENVVAR,
        help=f"Refuse manifests that expand to more tasks than this (also ${MAX_TASKS_ENVVAR}).",
    )(function)
    function = click.option(
        "--var-file",
        "var_files",
        multiple=True,
        type=click.Path(path_type=Path),
        metavar="FILE",
        help="YAML mapping of variable values; overrides the manifest's variables (repeatable).",
    )(function)
    function = click.option(
        "--var",
        "variables",
        multiple=True,
        metavar="NAME=VALUE",
        callback=_variables_callback,
        help="Set a manifest variable; overrides the manifest and --var-file (repeatable).",
    )(function)
    return function


def output_option(
    choices: Sequence[str] = ("text", "json", "yaml"), default: str = "text"
) -> Callable[[F], F]:
    """``-o/--output FORMAT``, passed as ``output: str``."""

    def decorate(function: F) -> F:
        return click.option(
            "-o",
            "--output",
            "output",
            type=click.Choice(list(choices)),
            default=default,
            show_default=True,
            help="Output format.",
        )(function)

    return decorate


_DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def parse_duration(text: str) -> float | None:
    """Seconds in ``90``, ``90s``, ``15m`` or ``1h30m``; None when ``text`` is not such a duration."""
    cleaned = text.strip().lower()
    match = _DURATION.match(cleaned)
    if not cleaned or match is None or not any(match.groups()):
        return None
    hours, minutes, seconds = match.groups()
    return int(hours or 0) * 3600 + int(minutes or 0) * 60 + float(seconds or 0)


def _duration_callback(ctx: click.Context, param: click.Parameter, value: str | None) -> float | None:
    if value is None:
        return None
    seconds = parse_duration(value)
    if seconds is None or seconds <= 0:
        raise click.BadParameter(f"{value!r} is not a positive duration; write e.g. 90s, 15m or 1h30m")
    return seconds


def timeout_option(function: F) -> F:
    """``--timeout DURATION`` for commands that wait for a job (exit code TIMEOUT when it elapses)."""
    return click.option(
        "--timeout",
        callback=_duration_callback,
        default=None,
        metavar="DURATION",
        help="Give up waiting after this long (e.g. 90s, 30m, 1h30m); exit 5.",
    )(function)


def no_color_option(function: F) -> F:
    """``--no-color``, passed as ``no_color: bool`` (NO_COLOR in the environment does the same)."""
    return click.option("--no-color", is_flag=True, help="No colour even on a terminal (also NO_COLOR).")(
        function
    )


def plain_text_option(function: F) -> F:
    """``--no-color`` for a command that never prints colour: accepted, so scripts can pass it to every
    command, and not passed to the function."""
    return click.option(
        "--no-color",
        is_flag=True,
        expose_value=False,
        help="Accepted for uniformity: this command never prints colour.",
    )(function)
