"""Helpers for end-to-end reconciler tests against the session's local target."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from batchrun.model import JobSpec, PoolSpec, TaskSpec, Workload
from tests.reconcile.proxy import IMAGE

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchrun.local.target import LocalTarget
    from batchrun.target import Target


@pytest.fixture(scope="session")
def target(local_target: LocalTarget) -> Target:
    from batchrun.target import target_from_local

    return target_from_local(local_target)


def make_workload(
    name: str, tasks: list[TaskSpec], nodes: int = 0, vm_size: str = "standard_d2s_v3", **job: Any
) -> Workload:
    """A workload of a pool (``nodes`` of ``vm_size``) and a job with ``tasks``, named after ``name``."""
    return Workload(
        name=name,
        manifest_path=Path("/nonexistent") / f"{name}.yaml",
        digest=f"{name}-{len(tasks)}",
        pool=PoolSpec(
            f"{name}-pool",
            {"vmSize": vm_size, "virtualMachineConfiguration": IMAGE, "targetDedicatedNodes": nodes},
        ),
        job=JobSpec(f"{name}-job", {"poolInfo": {"poolId": f"{name}-pool"}, **job}, tuple(tasks)),
    )


def tasks(count: int, command: str = "/bin/true", start: int = 0) -> list[TaskSpec]:
    return [TaskSpec(f"t{i:05d}", {"commandLine": command}) for i in range(start, start + count)]


class RequestCounter:
    """The emulator's request accounting (``/_emulator/requests``)."""

    def __init__(self, client: BatchClient) -> None:
        self._client = client

    def reset(self) -> None:
        from azure.core.rest import HttpRequest

        response = self._client.send_request(HttpRequest("POST", "/_emulator/requests/reset"))
        response.raise_for_status()

    def snapshot(self) -> dict[str, Any]:
        from azure.core.rest import HttpRequest

        response = self._client.send_request(HttpRequest("GET", "/_emulator/requests"))
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture()
def requests_counter(batch_client: BatchClient) -> Iterator[RequestCounter]:
    yield RequestCounter(batch_client)
