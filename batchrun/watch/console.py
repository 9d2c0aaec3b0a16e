"""How batchrun writes for people: rich on terminals, plain text elsewhere, colour only where wanted."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Literal, TextIO

import msgspec
from msgspec import field
from rich.console import Console, RenderableType

OutputFormat = Literal["text", "json"]

# Width for non-terminals (logs, pipes): wide enough for a summary table without wrapping stderr lines early.
PLAIN_WIDTH = 120


def _stdout() -> TextIO:
    return sys.stdout


def _stderr() -> TextIO:
    return sys.stderr


class OutputSettings(msgspec.Struct, frozen=True):
    """Where and how a command writes.

    ``terminal`` None means "ask the stream"; ``color`` None means "on terminals, unless NO_COLOR is set".
    Progress of a JSON run goes to ``progress_stream`` as plain lines so that ``stream`` holds only the JSON.
    """

    stream: TextIO = field(default_factory=_stdout)
    format: OutputFormat = "text"
    terminal: bool | None = None
    color: bool | None = None
    progress_stream: TextIO = field(default_factory=_stderr)

    def is_terminal(self) -> bool:
        if self.terminal is not None:
            return self.terminal
        isatty = getattr(self.stream, "isatty", None)
        return bool(isatty and isatty())

    def use_color(self, environ: Mapping[str, str] | None = None) -> bool:
        env = os.environ if environ is None else environ
        if self.color is not None:
            return self.color and self.is_terminal()
        return self.is_terminal() and not env.get("NO_COLOR")

    def console(self) -> Console:
        terminal = self.is_terminal()
        return Console(
            file=self.stream,
            force_terminal=terminal,
            no_color=not self.use_color(),
            color_system="auto" if self.use_color() else None,
            highlight=False,
            emoji=False,
            width=None if terminal else PLAIN_WIDTH,
            soft_wrap=False,
        )


def output_settings(output_format: str, no_color: bool, stream: TextIO | None = None) -> OutputSettings:
    """Settings from the CLI's ``-o`` and ``--no-color`` (NO_COLOR is honoured by :meth:`use_color`)."""
    return OutputSettings(
        stream=stream or sys.stdout,
        format="json" if output_format == "json" else "text",
        color=False if no_color else None,
    )


def print_block(console: Console, renderable: RenderableType) -> None:
    """Print a table or text block; off a terminal without the padding rich adds at line ends, so piped
    output has no trailing spaces (diffs and ``grep 'x$'`` stay clean)."""
    if console.is_terminal:
        console.print(renderable)
        return
    with console.capture() as captured:
        console.print(renderable)
    lines = [line.rstrip() for line in captured.get().split("\n")]
    console.file.write("\n".join(lines))
    console.file.flush()
