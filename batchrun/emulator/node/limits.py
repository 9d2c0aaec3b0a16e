"""A run's wall-clock limit, from its spec: as the text its failure reports and in seconds."""

from __future__ import annotations

from collections.abc import Mapping

from batchrun.emulator.node.model import TaskLaunch
from batchrun.emulator.timefmt import duration_seconds

# Batch's default maxWallClockTime for a job release task.
JOB_RELEASE_DEFAULT_LIMIT = 15 * 60.0
# Batch reports "unlimited" as TimeSpan.MaxValue (about 29,000 years); anything beyond a century is no limit.
UNLIMITED_SECONDS = 100 * 365 * 86400.0


def wall_clock_limit(launch: TaskLaunch) -> tuple[str, float | None]:
    """The run's ``maxWallClockTime`` as written (for the failure that reports it) and in seconds (None: no
    limit). A start task has none; a job release task has 15 minutes unless it says otherwise."""
    spec = launch.spec
    if launch.kind == "jobrelease":
        text = spec.get("maxWallClockTime")
        if not text:
            return "PT15M", JOB_RELEASE_DEFAULT_LIMIT
    elif launch.kind == "starttask":
        return "", None
    else:
        constraints = spec.get("constraints")
        text = constraints.get("maxWallClockTime") if isinstance(constraints, Mapping) else None
    return str(text or ""), time_limit(text)


def time_limit(text: object) -> float | None:
    """The limit in seconds for a ``maxWallClockTime`` value; None when absent, unlimited or malformed.

    The service validates durations on create, so a malformed one never gets a guessed limit here.
    """
    if not isinstance(text, str) or not text:
        return None
    seconds = duration_seconds(text)
    return None if seconds is None or seconds >= UNLIMITED_SECONDS else seconds
