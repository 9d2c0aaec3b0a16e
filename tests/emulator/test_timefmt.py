"""Batch's time text, written fast: the same text as ``strftime`` for every instant, whatever the path."""

from __future__ import annotations

import re
import time
from datetime import datetime, timedelta, timezone

import pytest

from batchrun.emulator.timefmt import iso, now_iso, parse_iso

UTC = timezone.utc


@pytest.mark.parametrize(
    "moment",
    [
        datetime(1970, 1, 1, tzinfo=UTC),
        datetime(2026, 12, 3, 7, 31, 59, 999999, tzinfo=UTC),
        datetime(2026, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2028, 2, 29, 12, 0, 0, 1, tzinfo=UTC),
        datetime(2099, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),  # past the fast path
        datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
        datetime(2026, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=2))),  # not UTC: converted
    ],
)
def test_a_time_is_written_as_strftime_writes_it(moment: datetime) -> None:
    assert iso(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_every_microsecond_around_second_boundaries_keeps_its_second() -> None:
    start = datetime(2026, 12, 3, 7, 59, 58, 999990, tzinfo=UTC)
    for step in range(40):
        moment = start + timedelta(microseconds=step)
        assert iso(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_now_is_the_current_utc_time_in_batch_text() -> None:
    before = datetime.now(UTC)
    text = now_iso()
    after = datetime.now(UTC)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", text)
    assert before - timedelta(milliseconds=1) <= parse_iso(text) <= after + timedelta(milliseconds=1)
    later = [now_iso() for _ in range(3)]
    time.sleep(1.01)  # the text of a new second, not the cached one
    assert parse_iso(now_iso()) - parse_iso(later[-1]) >= timedelta(seconds=1)
