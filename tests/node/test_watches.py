"""What the supervisor's look at a watched process decides, and the moments it wakes for (data cases)."""

from __future__ import annotations

import pytest

from batchrun.emulator.node.model import CancelFlag
from batchrun.emulator.node.spawn_server import SpawnedProcess
from batchrun.emulator.node.watches import Moments, Step, Watch, next_step


def _watch(cancelled: bool = False, deadline: float | None = None, **state: object) -> Watch:
    cancel = CancelFlag()
    if cancelled:
        cancel.set()
    watch = Watch(SpawnedProcess(), cancel, deadline, lambda result: None)
    for name, value in state.items():
        setattr(watch, name, value)
    return watch


@pytest.mark.parametrize(
    ("watch", "reaped", "now", "step"),
    [
        (_watch(), False, 10.0, None),
        (_watch(), True, 10.0, "finish"),
        (_watch(cancelled=True, deadline=5.0), True, 10.0, "finish"),  # ended first: nothing to end
        (_watch(cancelled=True), False, 10.0, "cancelled"),
        (_watch(cancelled=True, deadline=5.0), False, 10.0, "cancelled"),  # the cancel wins over the limit
        (_watch(deadline=10.0), False, 9.9, None),
        (_watch(deadline=10.0), False, 10.0, "timeout"),
        (_watch(cancelled=True, reason="cancelled", kill_at=11.0), False, 10.0, None),  # told; in its grace
        (_watch(reason="timeout", kill_at=11.0), False, 11.0, "kill"),
        (_watch(reason="timeout", kill_at=None), False, 99.0, None),  # killed already
    ],
)
def test_the_step_for_a_watched_process(watch: Watch, reaped: bool, now: float, step: Step | None) -> None:
    assert next_step(watch, reaped, now) == step


def test_moments_wake_the_pass_once_each() -> None:
    moments = Moments()
    assert moments.first() is None and not moments.pass_due(5.0)
    for moment in (3.0, 1.0, 2.0):
        moments.add(moment)
    assert moments.first() == 1.0
    assert moments.pass_due(2.0)
    assert moments.first() == 3.0
    assert not moments.pass_due(2.5)
    assert moments.pass_due(3.0) and moments.first() is None
