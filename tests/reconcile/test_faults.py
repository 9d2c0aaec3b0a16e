"""Creates that succeed while their response is lost: the SDK retries, gets 409 / TaskExists, and batchrun
checks the live resource instead of failing. A loopback proxy in front of the emulator forwards each request
and, the first time a job or a task collection is created, answers 503 instead of the real response."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pytest
from msgspec.structs import replace

import batchrun
from batchrun.errors import ApplyError
from batchrun.model import JobSpec, PoolSpec, StorageInput, TaskSpec, Workload
from tests.reconcile.conftest import make_workload, tasks
from tests.reconcile.proxy import IMAGE, Decision, FaultProxy

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.storage.blob import BlobServiceClient

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
    workload = make_workload("e2e-lost", tasks(150))
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


class FlakyProxy(FaultProxy):
    """Injects a fault into every fifth request (20 %), cycling through ``kinds``; ``seen`` counts them."""

    def __init__(self, upstream: str, kinds: tuple[Decision, ...]) -> None:
        self.kinds = kinds
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__(upstream, self._decide)

    def _decide(self, method: str, path: str) -> Decision:
        with self.lock:
            self.seen["requests"] += 1
            if self.seen["requests"] % 5 != 2:
                return "pass"
            kind = self.kinds[self.seen["faults"] % len(self.kinds)]
            self.seen["faults"] += 1
            self.seen[f"{kind} {method} {path.rsplit('/', 1)[-1]}"] += 1
            return kind


ALL_FAULTS: tuple[Decision, ...] = ("hang_up", "reset_after", "500", "503", "429", "429_retry_after", "lose")


@pytest.mark.parametrize("kinds", [(kind,) for kind in ALL_FAULTS] + [ALL_FAULTS], ids=[*ALL_FAULTS, "mixed"])
def test_one_apply_converges_at_a_20_percent_fault_rate(
    target: Target, batch_client: BatchClient, kinds: tuple[Decision, ...]
) -> None:
    # One request in five to Batch (reads, the pool and job creates, 10 task collections of 100, and the
    # retries themselves) gets the fault: a reset before or after the service processed it, 500, 503, 429
    # with and without Retry-After, or a lost 2xx answer. One apply must add each task exactly once.
    name = f"e2e-flaky-{len(kinds)}-{kinds[0].replace('_', '-')}"
    workload = make_workload(name, tasks(1000))
    try:
        with FlakyProxy(target.batch_url, kinds) as flaky:
            batchrun.apply(workload, target=replace(target, batch_url=flaky.url))
        hit = [key for key in flaky.seen if key.startswith(tuple(f"{kind} " for kind in kinds))]
        assert flaky.seen["faults"] >= 3 and any(" POST addtaskcollection" in key for key in hit), flaky.seen
        ids = [task.id for task in batch_client.list_tasks(f"{name}-job", select=["id"])]
        assert len(ids) == 1000 and len(set(ids)) == 1000  # every task exactly once
        assert not batchrun.plan(workload, target=target).has_changes
    finally:
        batchrun.destroy(workload, target=target, confirm_replace=True)


def test_a_task_added_meanwhile_with_another_definition_is_a_clear_failure(
    target: Target, batch_client: BatchClient
) -> None:
    # TaskExists is checked with one list request per collection; a different digest is named, no traceback.
    from azure.batch import models as batch_models

    workload = Workload(
        name="e2e-exists",
        manifest_path=Path("/nonexistent/e2e-exists.yaml"),
        digest="x",
        pool=PoolSpec("e2e-exists-pool", {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}),
        job=JobSpec(
            "e2e-exists-job",
            {"poolInfo": {"poolId": "e2e-exists-pool"}},
            tuple(TaskSpec(f"t{i}", {"commandLine": "/bin/true"}) for i in range(3)),
        ),
    )
    lists: list[str] = []

    def count_lists(method: str, path: str) -> Decision:
        if method == "GET" and path.endswith("/tasks"):
            lists.append(path)
        return "pass"

    try:
        job_only = replace(workload, job=replace(workload.job, tasks=()))  # type: ignore[type-var]
        batchrun.apply(job_only, target=target)
        with FaultProxy(target.batch_url, count_lists) as proxy:
            through = replace(target, batch_url=proxy.url)
            plan = batchrun.plan(workload, target=through)
            batch_client.create_task(  # the plan adds t1, and someone adds another t1 meanwhile
                "e2e-exists-job", batch_models.BatchTaskCreateOptions(id="t1", command_line="/bin/false")
            )
            lists.clear()
            with pytest.raises(ApplyError, match=r"task/e2e-exists-job/t1: TaskExists: .*another definition"):
                batchrun.apply(plan, target=through)
        assert len(lists) == 1  # one list request for the collection's TaskExists answers
    finally:
        batchrun.destroy(workload, target=target, confirm_replace=True)


STORAGE_FAULTS: tuple[Decision, ...] = ("hang_up", "reset_after", "500", "503", "lose")


def test_storage_writes_converge_at_a_20_percent_fault_rate(
    target: Target, tmp_path: Path, blob_service: BlobServiceClient
) -> None:
    # Uploads and the apply lock (create container, lease acquire, metadata, release) through a proxy that
    # fails one storage request in five. (Azure Storage throttles with 503, never 429: it is not injected.)
    source = tmp_path / "in"
    source.mkdir()
    for index in range(40):
        (source / f"f{index:02d}.txt").write_text(f"file {index}\n" * 50)
    workload = Workload(
        name="e2e-flaky-storage",
        manifest_path=tmp_path / "e2e-flaky-storage.yaml",
        digest="x",
        inputs=(StorageInput(name="data", source=source, container="e2e-flaky-storage-in"),),
    )
    account = target.blob_url.rstrip("/").rsplit("/", 1)
    try:
        with FlakyProxy(account[0], STORAGE_FAULTS) as flaky:
            batchrun.apply(workload, target=replace(target, blob_url=f"{flaky.url}/{account[1]}"))
        assert flaky.seen["faults"] >= 5 and any(" PUT " in key for key in flaky.seen), flaky.seen
        names = {b.name for b in blob_service.get_container_client("e2e-flaky-storage-in").list_blobs()}
        assert names == {f"f{index:02d}.txt" for index in range(40)}
        assert not batchrun.plan(workload, target=target).has_changes
        lock = blob_service.get_blob_client("batchrun-state", "e2e-flaky-storage/lock")
        assert lock.get_blob_properties().lease.state == "available"  # released, not left held
    finally:
        blob_service.delete_container("e2e-flaky-storage-in")
