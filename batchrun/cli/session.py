"""What every command that talks to Batch shares: the manifest it reads, the target it talks to, and where its
notes go (stderr, so stdout stays the command's answer).

``manifest_input`` adds MANIFEST, ``--var``, ``--var-file`` and ``--max-tasks`` and passes them to the command
as one ``source: ManifestInput``; ``target_options`` adds ``--target`` and ``-v`` and passes
``target: TargetChoice``, whose :meth:`TargetChoice.session` prints the target line (and, with ``-v``, one
redacted line per request) on stderr.
"""

from __future__ import annotations

import functools
import shlex
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click
import msgspec

from batchrun.cli.options import manifest_argument, manifest_arguments, variable_options
from batchrun.cli.start_up import end_start_up
from batchrun.errors import Diagnostic, ManifestError

if TYPE_CHECKING:
    from batchrun.api import Session
    from batchrun.model import Workload

F = TypeVar("F", bound=Callable[..., Any])


def note(line: str) -> None:
    """A progress or status line on stderr."""
    click.echo(line, err=True)


@contextmanager
def job_keeps_running_on_interrupt(source: ManifestInput) -> Iterator[None]:
    """Ctrl-C while waiting stops watching, not the job: say so and how to watch again."""
    try:
        yield
    except KeyboardInterrupt:
        note(f"Stopped waiting; the job keeps running (`{source.command('wait')}` watches it again).")
        raise


class ManifestInput(msgspec.Struct, frozen=True):
    """The manifest a command reads, with its variable overrides and expansion limit."""

    path: Path
    variables: Mapping[str, str]
    var_files: tuple[Path, ...]
    max_tasks: int

    def command(self, verb: str) -> str:
        """``batchrun VERB MANIFEST`` with this run's ``--var``/``--var-file`` flags, quoted for a shell."""
        words = ["batchrun", verb, str(self.path)]
        for name, value in self.variables.items():
            words += ["--var", f"{name}={value}"]
        for var_file in self.var_files:
            words += ["--var-file", str(var_file)]
        return shlex.join(words)

    def load(self) -> Workload:
        from batchrun.api import load

        return load(self.path, self.variables, self.var_files, self.max_tasks)


class ManifestSet(msgspec.Struct, frozen=True):
    """The manifests a command reads: one file (``single``), or several files and folders read as one set."""

    paths: tuple[Path, ...]
    variables: Mapping[str, str]
    var_files: tuple[Path, ...]
    max_tasks: int

    @property
    def single(self) -> ManifestInput | None:
        """The one manifest file named, or None when several files or a folder are."""
        if len(self.paths) == 1 and not self.paths[0].is_dir():
            return ManifestInput(self.paths[0], self.variables, self.var_files, self.max_tasks)
        return None

    def command(self, verb: str) -> str:
        return shlex.join(["batchrun", verb, *(str(path) for path in self.paths)])

    def load_all(self) -> tuple[Workload, ...]:
        """Every manifest, checked together, in the order to apply them (skipped files are noted)."""
        if self.variables or self.var_files:
            raise ManifestError(
                [
                    Diagnostic(
                        file="--var" if self.variables else "--var-file",
                        line=0,
                        column=0,
                        message="--var and --var-file set one manifest's variables; several manifests were "
                        "given",
                        hint="keep each workload's values in its manifest's `variables`, or run the "
                        "manifests that need flags one at a time",
                    )
                ]
            )
        from batchrun.api import load_all

        return load_all(
            self.paths,
            self.max_tasks,
            skipped=lambda path: note(
                f"Skipped {path}: "
                + (
                    "a link (links are not followed)."
                    if path.is_symlink()
                    else "not a workload manifest (no `kind: Workload`)."
                )
            ),
        )


class TargetChoice(msgspec.Struct, frozen=True):
    """``--target`` (None: decided by the environment) and ``-v``."""

    kind: str | None
    verbose: bool

    @contextmanager
    def session(self) -> Iterator[Session]:
        from batchrun.api import open_session

        with open_session(self.kind, note, note if self.verbose else None) as session:
            end_start_up()  # the target is resolved and its clients built: the command's work begins
            yield session


def manifest_input(function: F) -> F:
    """MANIFEST, ``--var``, ``--var-file`` and ``--max-tasks``, passed as ``source: ManifestInput``."""

    @functools.wraps(function)
    def command(
        *args: Any,
        manifest: Path,
        variables: dict[str, str],
        var_files: tuple[Path, ...],
        max_tasks: int,
        **kwargs: Any,
    ) -> Any:
        return function(*args, source=ManifestInput(manifest, variables, var_files, max_tasks), **kwargs)

    return manifest_argument(variable_options(cast(F, command)))


def manifest_set_input(function: F) -> F:
    """MANIFEST... (files or folders), ``--var``, ``--var-file`` and ``--max-tasks``, passed as
    ``sources: ManifestSet``."""

    @functools.wraps(function)
    def command(
        *args: Any,
        manifests: tuple[Path, ...],
        variables: dict[str, str],
        var_files: tuple[Path, ...],
        max_tasks: int,
        **kwargs: Any,
    ) -> Any:
        return function(*args, sources=ManifestSet(manifests, variables, var_files, max_tasks), **kwargs)

    return manifest_arguments(variable_options(cast(F, command)))


def target_options(function: F) -> F:
    """``--target`` and ``-v/--verbose``, passed as ``target: TargetChoice``."""

    @functools.wraps(function)
    def command(*args: Any, target_kind: str | None, verbose: bool, **kwargs: Any) -> Any:
        return function(*args, target=TargetChoice(target_kind, verbose), **kwargs)

    decorated = click.option(
        "-v", "--verbose", is_flag=True, help="Print each request (method, URL, status) on stderr, redacted."
    )(command)
    decorated = click.option(
        "--target",
        "target_kind",
        type=click.Choice(["local", "azure"]),
        default=None,
        help="Where the workload runs (default: azure when AZURE_BATCH_ENDPOINT is set, else local).",
    )(decorated)
    return cast(F, decorated)
