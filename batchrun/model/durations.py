"""ISO-8601 durations as Batch uses them (``PT15M``, ``P1DT2H``).

The manifest checks them; the planner compares them by length (``PT60M`` equals ``PT1H``).
"""

from __future__ import annotations

import re

_DURATION = re.compile(
    r"^P(?:(?P<years>\d+(?:\.\d+)?)Y)?(?:(?P<months>\d+(?:\.\d+)?)M)?(?:(?P<weeks>\d+(?:\.\d+)?)W)?"
    r"(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_SECONDS = {
    "years": 365 * 86400,
    "months": 30 * 86400,
    "weeks": 7 * 86400,
    "days": 86400,
    "hours": 3600,
    "minutes": 60,
    "seconds": 1,
}


def duration_seconds(value: str) -> float | None:
    """Seconds in an ISO-8601 duration (years and months approximated), or None when ``value`` is not one
    (``P`` and ``PT`` alone name no length, so they are not durations either)."""
    match = _DURATION.match(value)
    if match is None or value in ("P", "PT"):
        return None
    return sum(float(amount) * _SECONDS[unit] for unit, amount in match.groupdict().items() if amount)
