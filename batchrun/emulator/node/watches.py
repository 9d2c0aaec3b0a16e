"""A task process the supervisor watches, what a look at it decides, and the moments it must look again.

:func:`next_step` is the decision the supervisor's pass makes for each watched process (every
``CHECK_INTERVAL``, at a due moment, or after a wake): finish it once it has ended, end it (SIGTERM to its
group) when its run is cancelled or over its time limit, and kill the group when the grace after that has
passed. :class:`Moments` keeps the deadlines and kill times, so that the supervisor wakes for them.
"""

from __future__ import annotations

import heapq
import subprocess
from collections.abc import Callable
from typing import Literal

import msgspec

from batchrun.emulator.node.model import Cancellation
from batchrun.emulator.node.process import ProcessResult
from batchrun.emulator.node.spawn_server import SpawnedProcess, SpawnFailure

Step = Literal["finish", "cancelled", "timeout", "kill"]


class Watch(msgspec.Struct, eq=False):
    process: subprocess.Popen[bytes] | SpawnedProcess
    cancel: Cancellation
    deadline: float | None
    on_exit: Callable[[ProcessResult], None]
    fd: int | None = None
    reason: str | None = None  # cancelled | timeout once the process was told to end
    kill_at: float | None = None
    on_failure: Callable[[SpawnFailure], None] | None = None  # a spawn's, until it has started


def next_step(watch: Watch, reaped: bool, now: float) -> Step | None:
    """What to do with ``watch`` at ``now``; ``reaped``: its process has ended and been reaped."""
    if reaped:
        return "finish"
    if watch.reason is None:
        if watch.cancel.is_set():
            return "cancelled"
        if watch.deadline is not None and now >= watch.deadline:
            return "timeout"
    elif watch.kill_at is not None and now >= watch.kill_at:
        return "kill"
    return None


class Moments:
    """When (``time.monotonic``) watched processes must be looked at again: deadlines, kill times."""

    __slots__ = ("_heap",)

    def __init__(self) -> None:
        self._heap: list[float] = []

    def add(self, moment: float) -> None:
        heapq.heappush(self._heap, moment)

    def first(self) -> float | None:
        return self._heap[0] if self._heap else None

    def pass_due(self, now: float) -> bool:
        """Forget the moments up to ``now``; True when there was one (a pass must look at every process)."""
        due = False
        while self._heap and self._heap[0] <= now:
            heapq.heappop(self._heap)
            due = True
        return due
