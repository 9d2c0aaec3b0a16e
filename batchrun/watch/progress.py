"""The progress model shown while waiting: one immutable view per poll, and the completion-rate ETA."""

from __future__ import annotations

from collections import deque

import msgspec

from batchrun.watch.snapshot import JobSnapshot, NodeSummary, PoolSnapshot, TaskCounts


class ProgressView(msgspec.Struct, frozen=True):
    """Everything a renderer draws for one poll."""

    elapsed: float  # seconds since the wait started
    job: JobSnapshot
    counts: TaskCounts
    pool: PoolSnapshot | None
    nodes: NodeSummary | None
    eta: float | None  # seconds; None while unknown

    @property
    def fraction(self) -> float:
        return self.counts.completed / self.counts.total if self.counts.total else 0.0

    def change_key(self) -> tuple[object, ...]:
        """What must differ for a progress line to be worth printing (time alone is not a change)."""
        nodes = (self.nodes.ready, self.nodes.starting, self.nodes.failed) if self.nodes else None
        pool = (
            (self.pool.state, self.pool.allocation_state, len(self.pool.resize_errors)) if self.pool else None
        )
        return (self.counts, nodes, pool, self.job.state)


class EtaEstimator:
    """Remaining time from the completion rate over a sliding time window.

    The window (not the whole run) makes the estimate follow a pool that grows or shrinks; with no completion
    inside the window the estimate is unknown rather than infinite.
    """

    def __init__(self, window_seconds: float = 60.0) -> None:
        self._window = window_seconds
        self._samples: deque[tuple[float, int]] = deque()

    def observe(self, now: float, completed: int, total: int) -> float | None:
        self._samples.append((now, completed))
        while len(self._samples) > 2 and now - self._samples[1][0] >= self._window:
            self._samples.popleft()
        first_time, first_completed = self._samples[0]
        elapsed = now - first_time
        done = completed - first_completed
        remaining = total - completed
        if remaining <= 0:
            return 0.0
        if elapsed <= 0 or done <= 0:
            return None
        return remaining * elapsed / done


def format_duration(seconds: float | None) -> str:
    """``1h02m03s`` / ``2m05s`` / ``7s``; ``-`` when unknown."""
    if seconds is None:
        return "-"
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes:02d}m{secs:02d}s"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"
