"""The longer fault run: 5,000 tasks and 30 input files, Batch and storage both behind proxies that fail a
random 20 % of requests (seeded) with every kind of fault at once. One apply converges: every task once,
every blob there, the lock released, and the next plan has no changes."""

from __future__ import annotations

import random
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from msgspec.structs import replace

import batchrun
from batchrun.model import JobSpec, PoolSpec, StorageInput, TaskSpec, Workload
from tests.reconcile.proxy import IMAGE, Decision, FaultProxy

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.storage.blob import BlobServiceClient

    from batchrun.local.target import LocalTarget
    from batchrun.target import Target

TASKS = 5000


class RandomFaults(FaultProxy):
    def __init__(self, upstream: str, kinds: tuple[Decision, ...], seed: int) -> None:
        self.kinds = kinds
        self.random = random.Random(seed)
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        super().__init__(upstream, self._decide)

    def _decide(self, method: str, path: str) -> Decision:
        with self.lock:
            self.seen["requests"] += 1
            if self.random.random() >= 0.2:
                return "pass"
            kind = self.random.choice(self.kinds)
            self.seen[kind] += 1
            return kind


@pytest.fixture(scope="module")
def target(local_target: LocalTarget) -> Target:
    from batchrun.target import target_from_local

    return target_from_local(local_target)


@pytest.mark.slow
def test_a_large_apply_converges_with_faults_on_batch_and_storage(
    tmp_path: Path, target: Target, batch_client: BatchClient, blob_service: BlobServiceClient
) -> None:
    source = tmp_path / "in"
    source.mkdir()
    for index in range(30):
        (source / f"part-{index:02d}.txt").write_text(f"part {index}\n" * 200)
    workload = Workload(
        name="long-faults",
        manifest_path=tmp_path / "long-faults.yaml",
        digest="long-1",
        inputs=(StorageInput(name="data", source=source, container="long-faults-in"),),
        pool=PoolSpec(
            "long-faults-pool", {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}
        ),
        job=JobSpec(
            "long-faults-job",
            {"poolInfo": {"poolId": "long-faults-pool"}},
            tuple(TaskSpec(f"t{i:05d}", {"commandLine": f"/bin/echo {i}"}) for i in range(TASKS)),
        ),
    )
    account_url, account = target.blob_url.rstrip("/").rsplit("/", 1)
    batch_kinds: tuple[Decision, ...] = (
        "hang_up",
        "reset_after",
        "500",
        "503",
        "429",
        "429_retry_after",
        "lose",
    )
    storage_kinds: tuple[Decision, ...] = ("hang_up", "reset_after", "500", "503", "lose")
    try:
        with (
            RandomFaults(target.batch_url, batch_kinds, seed=7) as batch,
            RandomFaults(account_url, storage_kinds, seed=8) as storage,
        ):
            flaky = replace(target, batch_url=batch.url, blob_url=f"{storage.url}/{account}")
            batchrun.apply(workload, target=flaky)
        assert sum(batch.seen.values()) - batch.seen["requests"] >= 5, batch.seen
        assert sum(storage.seen.values()) - storage.seen["requests"] >= 3, storage.seen
        ids = [task.id for task in batch_client.list_tasks("long-faults-job", select=["id"])]
        assert len(ids) == TASKS and len(set(ids)) == TASKS
        blobs = {b.name for b in blob_service.get_container_client("long-faults-in").list_blobs()}
        assert blobs == {f"part-{index:02d}.txt" for index in range(30)}
        lock = blob_service.get_blob_client("batchrun-state", "long-faults/lock")
        assert lock.get_blob_properties().lease.state == "available"
        assert not batchrun.plan(workload, target=target).has_changes
    finally:
        batchrun.destroy(workload, target=target, containers=True, confirm_replace=True)
