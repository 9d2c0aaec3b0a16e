"""Waiting on a 20,000-task job: requests per poll stay constant and plain progress stays under 200 lines."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from .cli import batchrun, manifest

if TYPE_CHECKING:
    from azure.batch import BatchClient

TASKS = 20_000
JOB = "op-scale-job"
POOL = "op-scale-pool"
POLL_ROUTES = {"GET /jobs/{jobId}", "GET /jobs/{jobId}/taskcounts", "GET /pools/{poolId}"}
NODES_ROUTE = "GET /pools/{poolId}/nodes"


def _emulator(client: BatchClient, method: str, path: str) -> Any:
    from azure.core.rest import HttpRequest

    response = client.send_request(HttpRequest(method, path))
    response.raise_for_status()
    return response.json() if method == "GET" else None  # DELETE answers 202 without a body


@pytest.fixture
def big_job(batch_client: BatchClient) -> Iterator[None]:
    """Pool, job and 20,000 trivial tasks created through the raw SDK; deleted afterwards."""
    from azure.batch import models

    batch_client.create_pool(
        models.BatchPoolCreateOptions(
            id=POOL,
            vm_size="standard_d2s_v3",
            target_dedicated_nodes=2,
            task_slots_per_node=4,
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
        )
    )
    job = models.BatchJobCreateOptions(id=JOB, pool_info=models.BatchPoolInfo(pool_id=POOL))
    batch_client.create_job(job)
    try:
        batch_client.create_tasks(
            JOB,
            [models.BatchTaskCreateOptions(id=f"t{i:05d}", command_line="/bin/true") for i in range(TASKS)],
            max_concurrency=4,
        )
        yield
    finally:
        _emulator(batch_client, "DELETE", f"/jobs/{JOB}?api-version=2025-06-01")
        _emulator(batch_client, "DELETE", f"/pools/{POOL}?api-version=2025-06-01")


@pytest.mark.slow
def test_waiting_on_20000_tasks_costs_constant_requests_per_poll_and_few_lines(
    big_job: None, batch_client: BatchClient, local_target_env: dict[str, str], tmp_path: Path
) -> None:
    # The manifest only names the ids to wait on; the job itself was made through the SDK.
    body = f"job:\n  id: {JOB}\n  tasks:\n    - {{id: t00000, commandLine: /bin/true}}\n"
    path = manifest(tmp_path, "op-scale", body)
    _emulator(batch_client, "POST", "/_emulator/requests/reset")
    started = time.monotonic()
    run = batchrun(["wait", str(path), "--poll-interval", "2"], local_target_env, timeout=900)
    elapsed = time.monotonic() - started
    requests = _emulator(batch_client, "GET", "/_emulator/requests")
    assert run.code == 0, run.stdout[-2000:] + run.stderr[-2000:]
    assert f"tasks {TASKS}/{TASKS} done (100%)" in run.stdout

    progress = [line for line in run.stdout.splitlines() if line.startswith("[")]
    assert 2 <= len(progress) < 200
    assert len(run.stdout.splitlines()) < 200
    assert "\x1b" not in run.stdout and "\r" not in run.stdout

    routes: dict[str, int] = requests["by_route"]
    polls = routes["GET /jobs/{jobId}/taskcounts"]
    assert polls >= 3
    # Every poll reads job, task counts and pool once; the nodes every fifth poll (and on the confirming one),
    # and once more at the end for the node-hours line.
    assert all(routes[route] == polls for route in POLL_ROUTES), routes
    assert routes.get(NODES_ROUTE, 0) <= polls // 5 + 5  # + confirming polls (more on a loaded machine)
    # Polls never list tasks; once the job has an outcome its tasks are listed once, 1,000 a page, for the
    # record of results.
    assert set(routes) <= POLL_ROUTES | {NODES_ROUTE, "GET /jobs/{jobId}/tasks"}, routes
    assert routes.get("GET /jobs/{jobId}/tasks", 0) <= TASKS // 1000 + 1
    assert requests["writes"] == 0
    print(
        f"\n20,000 tasks waited on in {elapsed:.0f} s: {polls} polls, {requests['total']} requests "
        f"({requests['total'] / polls:.2f} per poll), {len(progress)} progress lines"
    )
