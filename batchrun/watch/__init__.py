"""Watching a workload run: the wait loop, its verdict and exit code, progress rendering and the summary.

``apply --wait`` and ``batchrun wait`` call :func:`wait_for_workload`; everything else here is pure
(snapshots in, decisions or text out) so it can be tested with plain data.
"""

from __future__ import annotations

from batchrun.watch.console import OutputSettings, output_settings
from batchrun.watch.loop import WaitSettings, wait_for_workload
from batchrun.watch.result import WaitResult
from batchrun.watch.verdict import Outcome, Verdict

__all__ = [
    "Outcome",
    "OutputSettings",
    "Verdict",
    "WaitResult",
    "WaitSettings",
    "output_settings",
    "wait_for_workload",
]
