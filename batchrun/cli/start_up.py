"""Python's cyclic garbage collector while a command starts.

Start-up (importing click, YAML and the Azure SDKs, loading the manifest, building the clients) makes
hundreds of thousands of long-lived objects and next to no garbage, and the collector scans them again and
again as they grow (measured: a fifth of the CPU time of a plan of a tiny manifest; validating a 90,000-task
manifest took 3.3 s with it, 1.8 s without, at the same peak memory). So ``batchrun``
(:func:`batchrun.cli.main.main`) runs its command with the collector off and a :class:`StartUp` as the click
context's object. Once the command has its session (a target resolved, its clients built),
:func:`end_start_up` freezes what exists (kept, never scanned again; what its reference counts free is still
freed) and turns the collector back on for the rest of the command. A command that opens no session
(validate, render, local) is short and runs without it. At the end, what exists is frozen too, so that the
interpreter's last collection at exit does not scan it all once more, and the collector is as it was before.
Run in-process without ``main`` (click's test runner), nothing here changes the collector.
"""

from __future__ import annotations

import gc

import click

from batchrun.collector import freeze_long_lived


class StartUp:
    """A command starting: the collector is off from :meth:`begin` until :meth:`end` (or :meth:`finish`)."""

    def __init__(self, collector_was_on: bool) -> None:
        self.collector_was_on = collector_was_on
        self.running = True

    @classmethod
    def begin(cls) -> StartUp:
        start_up = cls(gc.isenabled())
        gc.disable()
        return start_up

    def end(self) -> None:
        """Start-up is over: what exists is kept without being scanned again; the collector runs again."""
        if self.running:
            self.running = False
            self._restore()

    def finish(self) -> None:
        """The command is over: frozen, what exists is not scanned once more by the interpreter's last
        collection at exit (a tenth of a validate's CPU time)."""
        self.running = False
        self._restore()

    def _restore(self) -> None:
        freeze_long_lived()
        if self.collector_was_on:
            gc.enable()


def end_start_up() -> None:
    """The command has what it needs: freeze what exists and collect garbage again from now on."""
    context = click.get_current_context(silent=True)
    start_up = context.find_object(StartUp) if context is not None else None
    if start_up is not None:
        start_up.end()
