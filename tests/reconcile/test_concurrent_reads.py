"""Live state read concurrently: a task listing stops at its next page once its job turns out to be gone or
the plan stops (an error elsewhere, Ctrl-C), instead of reading every page first."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
from azure.core.exceptions import ResourceNotFoundError

from batchrun.azure.read import _JobRead, list_tasks
from batchrun.plan.live import LiveTask


class _Page:
    """An answer as the client's pipeline gives it: the response, and its body parsed once."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body
        self.http_response = self
        self.context = {"deserialized_data": body}

    def raise_for_status(self) -> None:
        return None


class _Config:
    api_version = "2024-07-01.20.0"


class SlowBatch:
    """Endless pages of one task each, one every 20 ms; the job read answers 404 after ``job_delay`` s."""

    _config = _Config()

    def __init__(self, job_delay: float = 0.0) -> None:
        self.pages = 0
        self.job_delay = job_delay

    def send_request(self, request: Any, **options: Any) -> _Page:
        if request.url.split("?")[0].endswith("/jobs/j"):  # the job read, not its task listing
            time.sleep(self.job_delay)
            raise ResourceNotFoundError("The specified job does not exist.")
        time.sleep(0.02)
        self.pages += 1
        task = {"id": f"t{self.pages}", "state": "active"}
        return _Page({"value": [task], "odata.nextLink": f"http://batch/jobs/j/tasks?page={self.pages}"})


def test_a_listing_stops_at_its_next_page_when_asked() -> None:
    batch = SlowBatch()
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    listed: dict[str, LiveTask] = {}
    list_tasks(batch, "j", listed.update, stop.is_set)  # type: ignore[arg-type]
    assert 0 < len(listed) < 20 and batch.pages < 20


def test_the_listing_of_a_job_that_is_gone_stops() -> None:
    from concurrent.futures import ThreadPoolExecutor

    batch = SlowBatch(job_delay=0.1)
    with ThreadPoolExecutor(2) as pool:
        read = _JobRead(pool, batch, "j", True, threading.Event())  # type: ignore[arg-type]
        assert read.result().job is None
        assert read.tasks is not None
        read.tasks.result(timeout=5)  # ends at its next page, not never
    assert batch.pages < 20


def test_nothing_is_listed_once_stopped() -> None:
    batch = SlowBatch()
    listed: dict[str, LiveTask] = {}
    list_tasks(batch, "j", listed.update, lambda: True)  # type: ignore[arg-type]
    assert listed == {}
    assert batch.pages == 0


class CountedBatch:
    """``pages`` pages of 1,000 tasks (t0, t1, ... in id order), each answered after ``delay`` s; the page
    numbered ``fail_at`` answers with an error."""

    _config = _Config()

    def __init__(
        self, pages: int, delay: float = 0.0, fail_at: int | None = None, gone_at: int | None = None
    ) -> None:
        self.total, self.delay, self.fail_at, self.gone_at = pages, delay, fail_at, gone_at
        self.asked = 0

    job: dict[str, Any] | None = None  # the job read's answer; None: 404

    def send_request(self, request: Any, **options: Any) -> _Page:
        if request.url.split("?")[0].endswith("/jobs/j"):  # the job read, not its task listing
            if self.job is None:
                raise ResourceNotFoundError("The specified job does not exist.")
            return _Page(self.job)
        time.sleep(self.delay)
        number = self.asked
        self.asked += 1
        if number == self.fail_at:
            raise ConnectionError(f"page {number} was lost")
        if number == self.gone_at:
            raise ResourceNotFoundError("The specified job does not exist.")
        tasks = [{"id": f"t{number * 1000 + i}", "state": "completed"} for i in range(1000)]
        more = (
            {"odata.nextLink": f"http://batch/jobs/j/tasks?page={number + 1}"}
            if number + 1 < self.total
            else {}
        )
        return _Page({"value": tasks, **more})


def test_every_page_is_listed_in_order() -> None:
    from batchrun.azure.rest import list_json

    batch = CountedBatch(pages=5)
    ids = [item["id"] for item in list_json(batch, "/jobs/j/tasks")]  # type: ignore[arg-type]
    assert ids == [f"t{i}" for i in range(5000)] and batch.asked == 5


def test_a_caller_that_stops_reading_stops_the_pages_read_ahead() -> None:
    from batchrun.azure.pages import PAGES_AHEAD
    from batchrun.azure.rest import list_json

    batch = CountedBatch(pages=50, delay=0.002)
    items = list_json(batch, "/jobs/j/tasks")  # type: ignore[arg-type]
    assert next(items)["id"] == "t0"
    time.sleep(0.2)  # time for 50 pages: only a few are read ahead of the caller
    items.close()
    assert batch.asked <= 2 + PAGES_AHEAD


def test_a_page_that_fails_raises_in_the_caller_after_the_pages_before_it() -> None:
    from batchrun.azure.rest import list_json

    batch = CountedBatch(pages=5, fail_at=3)
    seen: list[str] = []
    with pytest.raises(ConnectionError, match="page 3 was lost"):
        for item in list_json(batch, "/jobs/j/tasks"):  # type: ignore[arg-type]
            seen.append(item["id"])
    assert len(seen) == 3000


def _listing(batch: CountedBatch) -> tuple[Any, threading.Thread]:
    """ArrivingTasks filled by a listing of ``batch`` in its own thread, as a plan's reads fill them."""
    from batchrun.azure.arriving_tasks import ArrivingTasks

    arriving = ArrivingTasks()

    def listing_thread() -> None:
        list_tasks(batch, "j", arriving.arrived)  # type: ignore[arg-type]
        arriving.finish()

    listing = threading.Thread(target=listing_thread)
    listing.start()
    return arriving, listing


def test_tasks_listed_already_are_read_while_later_pages_are_on_their_way() -> None:
    batch = CountedBatch(pages=20, delay=0.02)
    arriving, listing = _listing(batch)
    assert arriving.get("t10") is not None  # on the first page
    assert batch.asked < 20  # found before the listing's end
    assert arriving.get("t15500") is not None and arriving.get("nope") is None  # a later page; the end
    assert batch.asked == 20 and len(arriving) == 20_000
    listing.join()


def test_a_task_taken_is_no_longer_held_and_a_take_waits_for_its_page() -> None:
    """A plan takes each task as it decides it: what the listing brought is held only until then, a take of
    a task on a later page waits for that page, and what nobody took (orphans) stays."""
    batch = CountedBatch(pages=20, delay=0.02)
    arriving, listing = _listing(batch)
    first = arriving.take("t10")
    assert first is not None and batch.asked < 20
    assert arriving.get("t10") is None and arriving.take("t10") is None  # taken once
    assert arriving.take("t15500") is not None  # a later page
    assert arriving.take("nope") is None and batch.asked == 20  # not there: the end of the listing
    for index in range(20_000):
        if index % 1000 and index not in (10, 15500):  # every page's first task stays
            assert arriving.take(f"t{index}") is not None
    assert sorted(arriving) == sorted(f"t{index}" for index in range(0, 20_000, 1000))
    listing.join()


def test_a_listing_that_fails_raises_where_its_tasks_are_read() -> None:
    from batchrun.azure.arriving_tasks import ArrivingTasks

    arriving = ArrivingTasks()
    arriving.arrived({})
    threading.Timer(0.05, lambda: arriving.finish(ConnectionError("listing lost"))).start()
    with pytest.raises(ConnectionError, match="listing lost"):
        arriving.get("t1")
    with pytest.raises(ConnectionError):
        len(arriving)


def test_a_plan_cannot_read_a_listing_stopped_before_its_end() -> None:
    from concurrent.futures import ThreadPoolExecutor

    from batchrun.azure.arriving_tasks import ListingStopped
    from batchrun.azure.read import _JobRead

    class SlowJob(CountedBatch):
        job = {"id": "j", "state": "completed"}

    stop = threading.Event()
    with ThreadPoolExecutor(2) as pool:
        read = _JobRead(pool, SlowJob(pages=50, delay=0.01), "j", True, stop)  # type: ignore[arg-type]
        tasks = read.arriving
        assert tasks.get("t1") is not None
        stop.set()
    with pytest.raises(ListingStopped):
        tasks.get("t49000")


def test_threads_switch_every_millisecond_while_live_state_is_read_and_as_before_after() -> None:
    import sys

    from batchrun.azure.parallel import prompt_thread_switches

    before = sys.getswitchinterval()
    with prompt_thread_switches():
        assert sys.getswitchinterval() == pytest.approx(0.001)
        with prompt_thread_switches(0.01):  # never slower than it was
            assert sys.getswitchinterval() == pytest.approx(0.001)
    assert sys.getswitchinterval() == before


def test_a_job_missing_from_the_start_has_no_task_and_one_deleted_midway_is_an_error() -> None:
    from batchrun.errors import TargetError

    pages: list[dict[str, Any]] = []
    assert list_tasks(CountedBatch(pages=5, gone_at=0), "j", pages.append)  # type: ignore[arg-type]
    assert pages == []
    with pytest.raises(TargetError, match="deleted while its tasks were being listed"):
        list_tasks(CountedBatch(pages=5, gone_at=2), "j", pages.append)  # type: ignore[arg-type]


def test_overlapping_prompt_switches_leave_the_interval_as_it_was_whichever_ends_first() -> None:
    import sys

    from batchrun.azure.parallel import prompt_thread_switches

    before = sys.getswitchinterval()
    for first_ends_first in (True, False):
        for shorter in (0.001, 0.0001):  # 0.0001 reads back as 9.9e-05: Python keeps whole microseconds
            first, second = prompt_thread_switches(), prompt_thread_switches(shorter)
            first.__enter__()
            second.__enter__()
            assert sys.getswitchinterval() == pytest.approx(shorter)
            if first_ends_first:
                first.__exit__(None, None, None)
                assert sys.getswitchinterval() == pytest.approx(shorter), "the shorter one still runs"
                second.__exit__(None, None, None)
            else:
                second.__exit__(None, None, None)
                assert sys.getswitchinterval() == pytest.approx(0.001), "the first one still runs"
                first.__exit__(None, None, None)
            assert sys.getswitchinterval() == before, (first_ends_first, shorter)
