"""Line-by-line progress for logs and CI: only on change, at a rate that keeps long runs short.

The minimum gap between two lines grows with the elapsed time (``max(min_interval, elapsed / 20)``), so the
number of lines grows with the logarithm of the run's length: about 20 lines for the first minutes, then about
20 more per e-fold of duration; a ten-hour run prints well under 200 lines. No control characters are written.
"""

from __future__ import annotations

from typing import TextIO

from batchrun.watch.progress import ProgressView, format_duration
from batchrun.watch.text import clean


def progress_line(view: ProgressView) -> str:
    counts = view.counts
    parts = [
        f"[{format_duration(view.elapsed)}]",
        f"tasks {counts.completed}/{counts.total} done ({view.fraction:.0%}):",
        f"{counts.running} running, {counts.active} active,",
        f"{counts.succeeded} succeeded, {counts.failed} failed",
    ]
    if view.pool is not None:
        if not view.pool.exists:
            parts.append(f"| pool {view.pool.id}: not found")
        elif view.nodes is not None:
            parts.append(
                f"| pool {view.pool.id}: {view.nodes.ready} ready, {view.nodes.starting} starting, "
                f"{view.nodes.failed} failed"
            )
        else:
            parts.append(f"| pool {view.pool.id}: {view.pool.current_nodes}/{view.pool.target_nodes} nodes")
        if view.pool.allocation_state and view.pool.allocation_state != "steady":
            parts.append(f"({view.pool.allocation_state})")
    if view.job.state and view.job.state != "active":
        parts.append(f"| job {view.job.state}")
    parts.append(f"| ETA {format_duration(view.eta)}")
    return clean(" ".join(parts))


class PlainProgressRenderer:
    def __init__(self, stream: TextIO, *, min_interval: float = 5.0) -> None:
        self._stream = stream
        self._min_interval = min_interval
        self._last_key: tuple[object, ...] | None = None
        self._last_time: float | None = None
        self.lines_written = 0

    def _gap(self, elapsed: float) -> float:
        return max(self._min_interval, elapsed / 20.0)

    def update(self, view: ProgressView) -> None:
        key = view.change_key()
        if key == self._last_key:
            return
        if self._last_time is not None and view.elapsed - self._last_time < self._gap(view.elapsed):
            return
        self._emit(view, key)

    def close(self, view: ProgressView | None) -> None:
        """Print the last state unless it was already the last line printed."""
        if view is not None and view.change_key() != self._last_key:
            self._emit(view, view.change_key())

    def _emit(self, view: ProgressView, key: tuple[object, ...]) -> None:
        self._stream.write(progress_line(view) + "\n")
        self._stream.flush()
        self._last_key = key
        self._last_time = view.elapsed
        self.lines_written += 1
