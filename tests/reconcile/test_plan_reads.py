"""How a plan reads: each answer parsed once, the orphan listings side by side for a small workload (and which
jobs and pools exist, from them), and task bodies made one request at a time, in order, while earlier requests
are on their way."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from batchrun.azure.orphans import reading_orphans
from batchrun.azure.parallel import StartedThreads
from batchrun.azure.rest import get_json, list_json
from batchrun.azure.write import BatchWriter
from batchrun.model import JobSpec, PoolSpec, TaskSpec, Workload
from batchrun.plan.live import WORKLOAD_KEY


class _Answer:
    """What the client's pipeline gives back: the response, and its body as the pipeline parsed it."""

    def __init__(self, body: dict[str, Any]) -> None:
        self.http_response = self
        self.context = {"deserialized_data": body}
        self.content = b"{}"
        self.status_code = 200

    def raise_for_status(self) -> None:
        return None

    def json(self) -> dict[str, Any]:
        raise AssertionError("the answer was parsed a second time")


class _Config:
    api_version = "2025-06-01"


class _Batch:
    """Answers every GET with one page; ``meet`` makes the listings wait for each other."""

    def __init__(self, meet: threading.Barrier | None = None) -> None:
        self._config = _Config()
        self.meet = meet
        self.paths: list[str] = []

    def send_request(self, request: Any, **options: Any) -> _Answer:
        assert options.get("_return_pipeline_response"), "the pipeline's parse is asked for"
        path = str(request.url).split("?")[0]
        self.paths.append(path)
        if self.meet is not None:
            self.meet.wait()  # times out unless the three listings are read at the same time
        mine = [{"name": WORKLOAD_KEY, "value": "w"}]
        if path.endswith("/pools"):
            foreign = {"id": "q", "state": "active", "metadata": []}
            return _Answer({"value": [{"id": "p", "state": "active", "metadata": mine}, foreign]})
        if path.endswith("/jobs"):
            return _Answer({"value": [{"id": "j", "state": "active", "poolInfo": {"poolId": "p"}}]})
        return _Answer({"value": [], "id": "x"})


def _workload() -> Workload:
    return Workload(
        name="w",
        manifest_path=Path("w.yaml"),
        digest="d",
        pool=PoolSpec("p", {"vmSize": "standard_d2s_v3"}),
        job=JobSpec("j", {"poolInfo": {"poolId": "p"}}, (TaskSpec("t", {"commandLine": "true"}),)),
    )


def test_an_answer_is_the_pipelines_parse_not_a_second_one() -> None:
    batch: Any = _Batch()
    assert list(list_json(batch, "/pools")) == [
        {"id": "p", "state": "active", "metadata": [{"name": WORKLOAD_KEY, "value": "w"}]},
        {"id": "q", "state": "active", "metadata": []},
    ]
    assert get_json(batch, "/jobs/x") == {"value": [], "id": "x"}


def test_a_small_workloads_orphan_listings_are_read_side_by_side() -> None:
    batch: Any = _Batch(threading.Barrier(3, timeout=5))
    with StartedThreads(4, "test-orphans") as pool:
        owned = reading_orphans(pool, batch, _workload(), side_by_side=True).owned()
    assert sorted(batch.paths) == ["/jobs", "/jobschedules", "/pools"]
    assert [p.id for p in owned.pools] == ["p"] and [j.id for j in owned.jobs] == ["j"]


def test_the_side_by_side_listings_tell_which_jobs_and_pools_exist_whoever_owns_them() -> None:
    batch: Any = _Batch()
    with StartedThreads(4, "test-orphans") as pool:
        reads = reading_orphans(pool, batch, _workload(), side_by_side=True)
        listed = reads.listed
        assert listed is not None
        assert listed.job_exists("J") and not listed.job_exists("j2")  # Batch ids ignore case
        assert listed.pool_exists("p") and listed.pool_exists("Q") and not listed.pool_exists("p2")
        assert [p.id for p in reads.owned().pools] == ["p"]  # q is another's
    with StartedThreads(4, "test-orphans") as pool:
        assert reading_orphans(pool, batch, _workload(), side_by_side=False).listed is None


def test_beside_a_long_task_listing_the_orphan_listings_are_read_one_after_another() -> None:
    batch: Any = _Batch()
    with StartedThreads(4, "test-orphans") as pool:
        owned = reading_orphans(pool, batch, _workload(), side_by_side=False).owned()
    assert batch.paths == ["/jobs", "/pools", "/jobschedules"]
    assert [p.id for p in owned.pools] == ["p"]


class _Adding:
    """addtaskcollection that takes a while and accepts every task."""

    def __init__(self) -> None:
        self._config = _Config()

    def send_request(self, request: Any, **options: Any) -> _Answer:
        time.sleep(0.02)
        import json

        bodies = json.loads(request.content)["value"]
        return _Answer({"value": [{"taskId": b["id"], "status": "success"} for b in bodies]})


def test_task_bodies_are_made_one_request_at_a_time_in_order() -> None:
    made: list[int] = []

    def body_of(number: int) -> dict[str, Any]:
        made.append(number)
        time.sleep(0.0002)  # long enough for the threads to take turns, were they making bodies together
        return {"id": f"t{number}", "commandLine": "true"}

    writer = BatchWriter(_Adding(), "w")  # type: ignore[arg-type]
    writer.add_tasks("j", list(range(800)), body_of, lambda count: None)
    # Each request's 100 bodies were made together: the first request could leave after its own bodies.
    chunks = [made[i : i + 100] for i in range(0, 800, 100)]
    assert all(chunk == list(range(chunk[0], chunk[0] + 100)) for chunk in chunks), made[:300]
    assert sorted(made) == list(range(800))


@pytest.mark.parametrize("threads", [1, 3])
def test_started_threads_work_as_an_executor(threads: int) -> None:
    with StartedThreads(threads, "test-map") as pool:
        assert list(pool.map(lambda n: n + 1, range(5))) == [1, 2, 3, 4, 5]
    assert isinstance(pool, StartedThreads) and not isinstance(pool, ThreadPoolExecutor)


def test_an_empty_answer_where_a_page_is_due_is_an_error_not_an_empty_page() -> None:
    from batchrun.errors import TargetError

    class _Empty(_Batch):
        def send_request(self, request: Any, **options: Any) -> _Answer:
            answer = _Answer({})
            answer.context, answer.content = {"deserialized_data": None}, b""
            return answer

    with pytest.raises(TargetError, match="without a JSON object"):
        list(list_json(_Empty(), "/jobs/j/tasks"))  # type: ignore[arg-type]
