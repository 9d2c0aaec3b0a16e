"""Live state read concurrently: a task listing stops at its next page once its job turns out to be gone or
the plan stops (an error elsewhere, Ctrl-C), instead of reading every page first."""

from __future__ import annotations

import threading
import time
from typing import Any

from azure.core.exceptions import ResourceNotFoundError

from batchrun.azure.read import _JobRead, read_tasks


class _Page:
    def __init__(self, body: dict[str, Any]) -> None:
        self.body = body

    def raise_for_status(self) -> None:
        return None

    def json(self) -> dict[str, Any]:
        return self.body


class _Config:
    api_version = "2024-07-01.20.0"


class SlowBatch:
    """Endless pages of one task each, one every 20 ms; the job read answers 404 after ``job_delay`` s."""

    _config = _Config()

    def __init__(self, job_delay: float = 0.0) -> None:
        self.pages = 0
        self.job_delay = job_delay

    def send_request(self, request: Any) -> _Page:
        time.sleep(0.02)
        self.pages += 1
        task = {"id": f"t{self.pages}", "state": "active"}
        return _Page({"value": [task], "odata.nextLink": f"http://batch/jobs/j/tasks?page={self.pages}"})

    def get_job(self, job_id: str) -> Any:
        time.sleep(self.job_delay)
        raise ResourceNotFoundError("The specified job does not exist.")


def test_a_listing_stops_at_its_next_page_when_asked() -> None:
    batch = SlowBatch()
    stop = threading.Event()
    threading.Timer(0.1, stop.set).start()
    listed = read_tasks(batch, "j", stop.is_set)  # type: ignore[arg-type]
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
    assert read_tasks(batch, "j", lambda: True) == {}  # type: ignore[arg-type]
    assert batch.pages == 0
