"""Wire formats for times, durations and ETags."""

from __future__ import annotations

import functools
import itertools
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from decimal import ROUND_HALF_EVEN, Decimal
from email.utils import format_datetime, parsedate_to_datetime

_etag_lock = threading.Lock()
_etag_counter = itertools.count()


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    if moment.tzinfo is timezone.utc and 1970 <= moment.year < 2100:
        # The same text as the strftime below, at a fraction of its cost (it runs several times per task).
        # Before 2106 a float timestamp is within 0.25 us of the instant, so its whole seconds are exact.
        return f"{_second_text(int(moment.timestamp()))}.{moment.microsecond:06d}Z"
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    """Now as Batch writes times (``2026-12-03T07:31:55.248447Z``): the text of the second, made once a
    second, and the microseconds (several are written for every task run; ``datetime`` took 4 us each)."""
    second, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    return f"{_second_text(second)}.{nanoseconds // 1000:06d}Z"


@functools.lru_cache(maxsize=4)
def _second_text(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def parse_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def rfc1123(text_iso: str) -> str:
    return format_datetime(parse_iso(text_iso), usegmt=True)


def parse_http_date(text: str) -> datetime | None:
    try:
        value = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def new_etag() -> str:
    """A unique, increasing ETag shaped like Batch's (0x + 15 hex digits)."""
    with _etag_lock:
        value = (time.time_ns() // 100 + next(_etag_counter)) & 0xFFFFFFFFFFFFFFF
    return f"0x{value:015X}"


_DURATION = re.compile(
    r"^P(?:(?P<days>\d+(?:\.\d+)?)D)?(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?"
    r"(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?$"
)

FOREVER = "P10675199DT2H48M5.4775807S"
_TICK = Decimal("0.0000001")  # a TimeSpan counts 100 ns ticks


# timedelta's own limit; durations beyond it (Batch's "unlimited" is about 29,000 years) are clamped to it.
_MAX_TIMEDELTA_SECONDS = 999_999_999 * 86400.0


@functools.lru_cache(maxsize=1024)  # a pure function, asked for every task start with a few distinct values
def duration_seconds(text: str) -> float | None:
    """Seconds in an ISO-8601 duration of days, hours, minutes, seconds (``PT15M00S``, ``P7D``, ``P``)."""
    match = _DURATION.match(text)
    if match is None or text.endswith("T"):
        return None
    units = {"days": 86400.0, "hours": 3600.0, "minutes": 60.0, "seconds": 1.0}
    return sum(float(value) * units[name] for name, value in match.groupdict().items() if value)


def parse_duration(text: str) -> timedelta | None:
    """:func:`duration_seconds` as a timedelta (clamped to the largest one), or None when malformed."""
    seconds = duration_seconds(text)
    if seconds is None:
        return None
    return timedelta(seconds=min(seconds, _MAX_TIMEDELTA_SECONDS))


def normal_duration(text: str) -> str:
    """A duration the way Batch returns it: .NET's ISO-8601 form of a TimeSpan (``XmlConvert.ToString``).

    Days, hours, minutes and seconds, each only when not zero, hours below 24, minutes and seconds below 60,
    seconds with up to 7 decimals (100 ns ticks, trailing zeros dropped), ``PT0S`` for zero. Recorded:
    ``PT06M00S`` -> ``PT6M`` (scale_pools), ``PT01H00M00S`` -> ``PT1H`` (job_schedules), ``P7D``, ``PT15M``
    and ``P10675199DT2H48M5.4775807S`` as returned (jobs, files). Text that is not a duration is unchanged.
    """
    match = _DURATION.match(text)
    if match is None or text.endswith("T"):
        return text
    units = {"days": 86400, "hours": 3600, "minutes": 60, "seconds": 1}
    total = sum(
        (Decimal(value) * units[name] for name, value in match.groupdict().items() if value), Decimal(0)
    ).quantize(_TICK, rounding=ROUND_HALF_EVEN)
    whole = int(total)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    seconds = Decimal(secs) + (total - whole)
    time = "".join(f"{value}{unit}" for value, unit in ((hours, "H"), (minutes, "M")) if value)
    if seconds:
        time += f"{format(seconds.normalize(), 'f')}S"
    if not days and not time:
        return "PT0S"
    return "P" + (f"{days}D" if days else "") + (f"T{time}" if time else "")
