"""Wire formats for times, durations and ETags."""

from __future__ import annotations

import itertools
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime, parsedate_to_datetime

_etag_lock = threading.Lock()
_etag_counter = itertools.count()


def now() -> datetime:
    return datetime.now(timezone.utc)


def iso(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    return iso(now())


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


def parse_duration(text: str) -> timedelta | None:
    """ISO-8601 duration (days/hours/minutes/seconds; the SDK writes ``PT15M00S``, ``P7D``, ``P``)."""
    match = _DURATION.match(text)
    if match is None or text.endswith("T"):
        return None
    parts = {name: float(value) for name, value in match.groupdict().items() if value}
    return timedelta(**parts)
