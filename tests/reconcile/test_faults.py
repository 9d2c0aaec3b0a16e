"""Creates that succeed while their response is lost: the SDK retries, gets 409 / TaskExists, and batchrun
checks the live resource instead of failing. A loopback proxy in front of the emulator forwards each request
and, the first time a job or a task collection is created, answers 503 instead of the real response."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest

import batchrun
from batchrun.model import JobSpec, PoolSpec, TaskSpec, Workload
from tests.reconcile.proxy import IMAGE, FaultProxy

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchrun.target import Target


class LosingProxy(FaultProxy):
    """Drops the first 2xx response of each route in ``lose`` (answers 503 instead); ``lost`` lists them."""

    def __init__(self, upstream: str, lose: set[str]) -> None:
        self.lose = set(lose)
        self.lost: list[str] = []
        self.lock = threading.Lock()
        super().__init__(upstream, self._decide)

    def _decide(self, method: str, path: str) -> Literal["pass", "lose", "hang_up"]:
        route = f"{method} {path.rsplit('/', 1)[-1]}"
        with self.lock:
            if route not in self.lose:
                return "pass"
            self.lose.discard(route)
            self.lost.append(route)
            return "lose"


@pytest.fixture()
def proxy(target: Target) -> Iterator[LosingProxy]:
    losing = LosingProxy(target.batch_url, {"POST jobs", "POST addtaskcollection"})
    with losing:
        yield losing


def test_lost_create_responses_are_checked_against_live(
    target: Target, proxy: LosingProxy, batch_client: BatchClient
) -> None:
    workload = Workload(
        name="e2e-lost",
        manifest_path=Path("/nonexistent/e2e-lost.yaml"),
        digest="x",
        pool=PoolSpec("e2e-lost-pool", {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}),
        job=JobSpec(
            "e2e-lost-job",
            {"poolInfo": {"poolId": "e2e-lost-pool"}},
            tuple(TaskSpec(f"t{i}", {"commandLine": "/bin/true"}) for i in range(150)),
        ),
    )
    through_proxy = replace(target, batch_url=proxy.url)
    batchrun.apply(workload, target=through_proxy)
    assert sorted(proxy.lost) == ["POST addtaskcollection", "POST jobs"]  # both faults happened
    assert sum(1 for _ in batch_client.list_tasks("e2e-lost-job", select=["id"])) == 150
    assert not batchrun.plan(workload, target=target).has_changes
    batchrun.destroy(workload, target=target, confirm_replace=True)


def test_task_groups_over_the_request_size_limit_are_split(target: Target, batch_client: BatchClient) -> None:
    # 100 tasks of ~15 KB each make a 1.5 MB add request: Batch (and the emulator) answer 413
    # RequestBodyTooLarge, and batchrun must send that group again in halves instead of failing.
    large = [{"name": "PAYLOAD", "value": "x" * 15_000}]
    workload = Workload(
        name="e2e-large",
        manifest_path=Path("/nonexistent/e2e-large.yaml"),
        digest="x",
        pool=PoolSpec("e2e-large-pool", {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}),
        job=JobSpec(
            "e2e-large-job",
            {"poolInfo": {"poolId": "e2e-large-pool"}},
            tuple(
                TaskSpec(f"t{i}", {"commandLine": "/bin/true", "environmentSettings": large})
                for i in range(120)
            ),
        ),
    )
    try:
        batchrun.apply(workload, target=target)
        assert sum(1 for _ in batch_client.list_tasks("e2e-large-job", select=["id"])) == 120
        assert not batchrun.plan(workload, target=target).has_changes
    finally:
        batchrun.destroy(workload, target=target, confirm_replace=True)
