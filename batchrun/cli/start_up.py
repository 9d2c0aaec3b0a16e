"""Python's cyclic garbage collector while a command starts.

Start-up (importing click, YAML and the Azure SDKs, loading the manifest, building the clients) makes
hundreds of thousands of long-lived objects and next to no garbage, and the collector scans them again and
again as they grow: a large share of the CPU time of a plan of a tiny manifest, half of the time to load a
100,000-task manifest. So ``batchrun`` (:func:`batchrun.cli.main.main`) runs its command with the collector
off and a :class:`StartUp` as the click context's object; once the command has its session (a target
resolved, its clients built), :func:`end_start_up` freezes what exists (kept, never scanned again; objects
freed by their reference counts are still freed) and turns the collector back on for the rest of the command.
A command that never opens a session (validate, render, local) is short and ends with the collector still
off. Run in-process without ``main`` (click's test runner), nothing here changes the collector.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass

import click


@dataclass
class StartUp:
    """The command is starting: the collector is off until :func:`end_start_up`."""

    running: bool = True

    def end(self) -> None:
        if self.running:
            self.running = False
            gc.freeze()
            gc.enable()


def end_start_up() -> None:
    """The command has what it needs: freeze what exists and collect garbage again from now on."""
    context = click.get_current_context(silent=True)
    start_up = context.find_object(StartUp) if context is not None else None
    if start_up is not None:
        start_up.end()
