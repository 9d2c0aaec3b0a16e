"""A plan reads a pool's nodes only when the pool may have some: a steady pool counting none is not asked
for its nodes (a request fewer on every plan of an idle pool); a pool running a task is, and its running
node is counted (replacing or deleting that pool is then blocked without --confirm-replace)."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

from batchrun.azure.read import read_pool
from batchrun.azure.rest import get_json, post_json
from tests.reconcile.proxy import IMAGE

if TYPE_CHECKING:
    from azure.batch import BatchClient

NODES = "GET /pools/{poolId}/nodes"


def _requests(client: BatchClient, method: str, path: str) -> Any:
    from azure.core.rest import HttpRequest

    response = client.send_request(HttpRequest(method, path))
    response.raise_for_status()
    return response.json() if method == "GET" else None


def _until(check: Any, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, f"not {what} after {seconds} s"
        time.sleep(0.2)


@pytest.fixture
def pools(batch_client: BatchClient) -> Iterator[BatchClient]:
    yield batch_client
    from azure.core.exceptions import HttpResponseError

    for path in ("/jobs/rn-job", "/pools/rn-idle", "/pools/rn-busy"):
        with contextlib.suppress(HttpResponseError):  # not made: the test stopped before
            _requests(batch_client, "DELETE", f"{path}?api-version=2025-06-01")


def test_an_idle_pool_is_not_asked_for_its_nodes_and_a_busy_one_counts_its_running_node(
    pools: BatchClient,
) -> None:
    client = pools
    post_json(
        client, "/pools", {"id": "rn-idle", "vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}
    )
    _until(lambda: get_json(client, "/pools/rn-idle").get("allocationState") == "steady", "steady")
    _requests(client, "POST", "/_emulator/requests/reset")
    idle = read_pool(client, "rn-idle")
    assert idle is not None and idle.running_nodes == 0
    assert NODES not in _requests(client, "GET", "/_emulator/requests")["by_route"]

    post_json(
        client,
        "/pools",
        {
            "id": "rn-busy",
            "vmSize": "standard_d2s_v3",
            "virtualMachineConfiguration": IMAGE,
            "targetDedicatedNodes": 1,
        },
    )
    post_json(client, "/jobs", {"id": "rn-job", "poolInfo": {"poolId": "rn-busy"}})
    post_json(client, "/jobs/rn-job/tasks", {"id": "sleeps", "commandLine": "/bin/sleep 60"})
    _until(lambda: get_json(client, "/jobs/rn-job/tasks/sleeps").get("state") == "running", "running")
    _requests(client, "POST", "/_emulator/requests/reset")
    busy = read_pool(client, "rn-busy")
    assert busy is not None and busy.running_nodes == 1
    assert _requests(client, "GET", "/_emulator/requests")["by_route"][NODES] == 1
