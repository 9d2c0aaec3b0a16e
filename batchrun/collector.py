"""Python's cyclic garbage collector paused while a plan is made and while its tasks are added.

A plan of 10,000 tasks makes a few objects per task (digests, changes, request bodies) that live until the
apply ends, and next to no cyclic garbage; meanwhile the collector scans every live object again each time
their number grows by a quarter (measured: a fifth of the CPU time of a fresh apply of 10,000 tasks). Paused,
objects are still freed by their reference counts; the rare cycle waits for the collector to run again, right
after. Only those two CPU-bound steps are paused, not the waits of an apply (for a pool to be deleted, say).
Pauses nest: only the outermost, which found the collector on, turns it back on. Pauses that overlap on
several threads without nesting may turn it back on early, which costs time, never memory.

Turned back on, the collector would scan every object made during the pause at its next young collection,
and again at the one after (about 12 ms after a 10,000-task plan, between the plan and the first write). So
the objects alive at the end of the pause are moved out of the young generations first (list splices, no
scan). In a process that freezes what lives long (``gc.freeze``, as the CLI does once it has started), they
are frozen with the rest; otherwise they go to the oldest generation (``gc.freeze`` then ``gc.unfreeze``) and
are scanned at the next full collection, like any object that lives long. A freeze made before the pause is
never undone.

Whether the process freezes is known here, not asked of Python: ``gc.get_freeze_count()`` counts the frozen
objects one by one, 5 ms at the end of every pause once a CLI command had frozen its start-up (over 1 % of a
plan of a tiny manifest). A process that freezes through :func:`freeze_long_lived` is known to; any other is
asked, and there the frozen objects are few or none.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


class _Freezing:
    """Whether this process keeps what lives long frozen (:func:`freeze_long_lived`). One per process, as
    the collector's frozen generation is."""

    def __init__(self) -> None:
        self.on = False


_FREEZING = _Freezing()


def freeze_long_lived() -> None:
    """Freeze what exists now (kept, never scanned again; what its reference counts free is still freed),
    and from now on what each pause leaves alive with it (the CLI, once a command has started)."""
    gc.freeze()
    _FREEZING.on = True


def thaw() -> None:
    """Undo :func:`freeze_long_lived` (and any freeze): all that is frozen goes to the oldest generation."""
    _FREEZING.on = False
    gc.unfreeze()


@contextmanager
def collector_paused() -> Iterator[None]:
    """The block runs with the cyclic collector off; it is on again after, when it was on before."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            frozen_before = _FREEZING.on or gc.get_freeze_count() > 0
            gc.freeze()
            if not frozen_before:
                gc.unfreeze()  # all that is alive now is in the oldest generation
            gc.enable()
