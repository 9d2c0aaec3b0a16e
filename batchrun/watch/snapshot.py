"""What one look at a running workload sees: SDK-free snapshots of the job, its task counts and its pool.

Produced by :mod:`batchrun.azure.monitor` and consumed by the pure pieces of :mod:`batchrun.watch` (verdict,
progress, renderers), so every decision can be tested with plain data.
"""

from __future__ import annotations

from collections.abc import Mapping

import msgspec
from msgspec import field

# Node states grouped the way a user thinks about them (Batch REST node states, lowercase).
READY_NODE_STATES = frozenset({"idle", "running"})
STARTING_NODE_STATES = frozenset(
    {"creating", "starting", "waitingforstarttask", "rebooting", "reimaging", "upgradingos"}
)
FAILED_NODE_STATES = frozenset({"starttaskfailed", "unusable"})


class TaskCounts(msgspec.Struct, frozen=True):
    """The job's task counts as Batch reports them (preparing tasks count as running)."""

    active: int = 0
    running: int = 0
    completed: int = 0
    succeeded: int = 0
    failed: int = 0

    @property
    def total(self) -> int:
        return self.active + self.running + self.completed

    @property
    def all_completed(self) -> bool:
        return self.total > 0 and self.completed == self.total


class NodeSummary(msgspec.Struct, frozen=True):
    """Nodes of a pool by user-facing group, plus the raw count per Batch state."""

    by_state: Mapping[str, int] = field(default_factory=dict)

    def _count(self, states: frozenset[str]) -> int:
        return sum(count for state, count in self.by_state.items() if state in states)

    @property
    def ready(self) -> int:
        return self._count(READY_NODE_STATES)

    @property
    def starting(self) -> int:
        return self._count(STARTING_NODE_STATES)

    @property
    def failed(self) -> int:
        return self._count(FAILED_NODE_STATES)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())


class ResizeProblem(msgspec.Struct, frozen=True):
    code: str
    message: str


class PoolSnapshot(msgspec.Struct, frozen=True):
    """A pool as seen live. ``exists`` is False when Batch answered 404; other fields are then defaults."""

    id: str
    exists: bool
    state: str = ""  # active | deleting
    allocation_state: str = ""  # steady | resizing | stopping
    current_nodes: int = 0  # dedicated + low priority
    target_nodes: int = 0
    auto_scale: bool = False
    resize_errors: tuple[ResizeProblem, ...] = ()
    metadata: Mapping[str, str] = field(default_factory=dict)


class ScheduleSnapshot(msgspec.Struct, frozen=True):
    """A job schedule as seen live, with its latest runs (newest first): (job id, state, start, end)."""

    id: str
    exists: bool
    state: str = ""
    next_run_time: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    runs: tuple[tuple[str, str, str | None, str | None], ...] = ()


class JobSnapshot(msgspec.Struct, frozen=True):
    """A job as seen live. ``exists`` is False when Batch answered 404."""

    id: str
    exists: bool
    state: str = ""  # active | disabling | disabled | enabling | terminating | completed | deleting
    pool_id: str | None = None
    on_all_tasks_complete: str = ""
    start_time: str | None = None  # ISO 8601
    end_time: str | None = None
    terminate_reason: str | None = None
    scheduling_error: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)


class FailedTask(msgspec.Struct, frozen=True):
    """A task whose execution result is ``failure``, with the end of its stderr when it could be read."""

    id: str
    exit_code: int | None
    failure_code: str | None
    failure_message: str | None
    stderr_tail: tuple[str, ...] = ()


class FailedNode(msgspec.Struct, frozen=True):
    """A node that cannot run tasks, with why: its start task's outcome and the node's own errors."""

    id: str
    state: str
    start_task_exit_code: int | None = None
    start_task_failure: str | None = None  # "code: message" of the start task's failureInfo
    errors: tuple[str, ...] = ()  # "code: message" of each node error


class TaskDetail(msgspec.Struct, frozen=True):
    """What ``logs`` needs to know about one task."""

    id: str
    exists: bool
    state: str = ""  # active | preparing | running | completed
    exit_code: int | None = None
    result: str | None = None  # success | failure
    failure_code: str | None = None
