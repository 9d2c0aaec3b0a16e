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
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def collector_paused() -> Iterator[None]:
    """The block runs with the cyclic collector off; it is on again after, when it was on before."""
    was_on = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_on:
            frozen_before = gc.get_freeze_count()
            gc.freeze()
            if not frozen_before:
                gc.unfreeze()  # all that is alive now is in the oldest generation
            gc.enable()
