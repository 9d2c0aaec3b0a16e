"""ISO-8601 durations as Batch sends them: ``PT15M``, ``PT15M00S``, ``P7D``, ``P``, ``P10675199D...``."""

from __future__ import annotations

import re

_DURATION = re.compile(
    r"^P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)
_SECONDS = {"weeks": 604800.0, "days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}
# Batch reports "unlimited" as TimeSpan.MaxValue (about 29,000 years); anything beyond a century is no limit.
_UNLIMITED_SECONDS = 100 * 365 * 86400.0


def parse_duration(text: str) -> float:
    """Seconds in ``text``; raises ValueError for anything that is not an ISO-8601 duration."""
    match = _DURATION.match(text.strip().upper())
    if match is None or text.strip().upper().endswith("T"):
        raise ValueError(f"not an ISO-8601 duration: {text!r}")
    return sum(float(value) * _SECONDS[name] for name, value in match.groupdict().items() if value)


def time_limit(text: object) -> float | None:
    """The limit in seconds for a ``maxWallClockTime`` value, or None when absent or unlimited."""
    if not isinstance(text, str) or not text:
        return None
    seconds = parse_duration(text)
    return None if seconds >= _UNLIMITED_SECONDS else seconds
