"""Node operations through raw REST and the SDK: reboot, reimage, scheduling, removal, service logs, node
files, node counts and supported images."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from tests.emulator.conftest import Emulator, raw, vm, wait_until

POOL = "ops-pool"


def node_ids(client: BatchClient, pool_id: str = POOL) -> list[str]:
    return sorted(node.id for node in client.list_nodes(pool_id))


def node_state(client: BatchClient, node_id: str, pool_id: str = POOL) -> Any:
    return client.get_node(pool_id, node_id).state  # a str enum: compares equal to "idle"


@pytest.fixture(scope="module")
def pool(client: BatchClient) -> list[str]:
    body = {
        "id": POOL,
        "vmSize": "s",
        "virtualMachineConfiguration": vm(),
        "targetDedicatedNodes": 2,
        "startTask": {"commandLine": "/bin/sh -c 'echo started >> $AZ_BATCH_NODE_SHARED_DIR/boots'"},
    }
    assert raw(client, "POST", "/pools", body).status_code == 201
    wait_until(
        lambda: len(node_ids(client)) == 2 and all(node_state(client, n) == "idle" for n in node_ids(client)),
        60,
        "two idle nodes",
    )
    return node_ids(client)


def run_sleeper(client: BatchClient, job_id: str, node_count: int = 2) -> None:
    job = {"id": job_id, "poolInfo": {"poolId": POOL}}
    assert raw(client, "POST", "/jobs", job).status_code == 201
    for index in range(node_count):
        assert (
            raw(
                client, "POST", f"/jobs/{job_id}/tasks", {"id": f"s{index}", "commandLine": "sleep 30"}
            ).status_code
            == 201
        )
    wait_until(
        lambda: client.get_job_task_counts(job_id).task_counts.running == node_count, 30, "sleepers running"
    )


def task_on(client: BatchClient, job_id: str, node_id: str) -> Any:
    return next(t for t in client.list_tasks(job_id) if t.node_info and t.node_info.node_id == node_id)


def test_reboot_requeues_running_tasks_and_reruns_the_start_task(
    client: BatchClient, emulator: Emulator, pool: list[str]
) -> None:
    run_sleeper(client, "ops-reboot")
    node = pool[0]
    sleeper = task_on(client, "ops-reboot", node)
    response = raw(client, "POST", f"/pools/{POOL}/nodes/{node}/reboot", {"nodeRebootOption": "requeue"})
    assert response.status_code == 202
    wait_until(lambda: node_state(client, node) == "idle", 60, "the rebooted node idle again")
    info = client.get_node(POOL, node)
    assert info.start_task_info.state == "completed"
    requeued = client.get_task("ops-reboot", sleeper.id)
    assert requeued.execution_info.requeue_count >= 1
    shared = emulator.config.nodes_dir / POOL / node / "shared" / "boots"
    assert shared.read_text().count("started") == 2  # the start task ran again; the disk was kept
    assert raw(client, "POST", "/jobs/ops-reboot/terminate").status_code == 202


def test_reboot_with_terminate_ends_running_tasks(client: BatchClient, pool: list[str]) -> None:
    run_sleeper(client, "ops-term")
    node = pool[1]
    sleeper = task_on(client, "ops-term", node)
    assert (
        raw(
            client, "POST", f"/pools/{POOL}/nodes/{node}/reboot", {"nodeRebootOption": "terminate"}
        ).status_code
        == 202
    )
    wait_until(lambda: client.get_task("ops-term", sleeper.id).state == "completed", 30, "the task ended")
    ended = client.get_task("ops-term", sleeper.id)
    assert ended.execution_info.failure_info.code == "TaskEnded"
    wait_until(lambda: node_state(client, node) == "idle", 60, "node idle again")
    assert raw(client, "POST", "/jobs/ops-term/terminate").status_code == 202


def test_reimage_wipes_the_disk(client: BatchClient, emulator: Emulator, pool: list[str]) -> None:
    node = pool[1]
    wait_until(lambda: node_state(client, node) == "idle", 60, "node idle")
    marker = emulator.config.nodes_dir / POOL / node / "shared" / "marker"
    marker.write_text("x")
    assert (
        raw(
            client, "POST", f"/pools/{POOL}/nodes/{node}/reimage", {"nodeReimageOption": "requeue"}
        ).status_code
        == 202
    )
    wait_until(lambda: node_state(client, node) == "idle", 60, "the reimaged node idle")
    assert not marker.exists()
    boots = emulator.config.nodes_dir / POOL / node / "shared" / "boots"
    assert boots.read_text().count("started") == 1  # a fresh disk: only the start task of this boot


def test_disable_scheduling_keeps_tasks_off_the_node(client: BatchClient, pool: list[str]) -> None:
    node = pool[0]
    wait_until(lambda: node_state(client, node) == "idle", 60, "node idle")
    response = raw(
        client,
        "POST",
        f"/pools/{POOL}/nodes/{node}/disablescheduling",
        {"nodeDisableSchedulingOption": "requeue"},
    )
    assert response.status_code == 200
    assert client.get_node(POOL, node).scheduling_state == "disabled"
    assert raw(client, "POST", "/jobs", {"id": "ops-sched", "poolInfo": {"poolId": POOL}}).status_code == 201
    for index in range(4):
        raw(client, "POST", "/jobs/ops-sched/tasks", {"id": f"t{index}", "commandLine": "true"})
    wait_until(lambda: client.get_job_task_counts("ops-sched").task_counts.completed == 4, 30, "tasks done")
    assert {t.node_info.node_id for t in client.list_tasks("ops-sched")} == {pool[1]}
    assert raw(client, "POST", f"/pools/{POOL}/nodes/{node}/enablescheduling").status_code == 200
    assert client.get_node(POOL, node).scheduling_state == "enabled"


def test_node_files_list_get_properties_delete(client: BatchClient, pool: list[str]) -> None:
    node = pool[0]
    listing = raw(client, "GET", f"/pools/{POOL}/nodes/{node}/files?recursive=true").json()
    names = {entry["name"] for entry in listing["value"] if not entry["isDirectory"]}
    assert "startup/stdout.txt" in names
    path = "startup%2Fstdout.txt"
    head = raw(client, "HEAD", f"/pools/{POOL}/nodes/{node}/files/{path}")
    assert head.status_code == 200
    body = raw(client, "GET", f"/pools/{POOL}/nodes/{node}/files/{path}")
    assert len(body.read()) == int(head.headers["Content-Length"])
    tail = raw(client, "GET", f"/pools/{POOL}/nodes/{node}/files/{path}", headers={"ocp-range": "bytes=-3"})
    assert tail.read() == body.read()[-3:]
    assert raw(client, "DELETE", f"/pools/{POOL}/nodes/{node}/files/{path}").status_code == 200
    assert raw(client, "HEAD", f"/pools/{POOL}/nodes/{node}/files/{path}").status_code == 404


def test_upload_batch_service_logs_to_a_container_sas(
    client: BatchClient, pool: list[str], blob_service: BlobServiceClient
) -> None:
    container = blob_service.create_container("ops-node-logs")
    sas = generate_container_sas(
        blob_service.account_name,
        "ops-node-logs",
        account_key=blob_service.credential.account_key,
        permission=ContainerSasPermissions(write=True, create=True, add=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    start = (datetime.now(timezone.utc) - timedelta(hours=1)).isoformat()
    response = raw(
        client,
        "POST",
        f"/pools/{POOL}/nodes/{pool[1]}/uploadbatchservicelogs",
        {"containerUrl": f"{container.url}?{sas}", "startTime": start},
    )
    assert response.status_code == 200, response.text()
    result = response.json()
    assert result["numberOfFilesUploaded"] >= 1
    uploaded = [blob.name for blob in container.list_blobs()]
    assert len(uploaded) == result["numberOfFilesUploaded"]
    assert all(name.startswith(result["virtualDirectoryName"] + "/") for name in uploaded)
    assert any(name.endswith("volatile/node-agent.log") for name in uploaded)


def test_node_counts_and_supported_images(client: BatchClient, pool: list[str]) -> None:
    counts = {entry.pool_id: entry for entry in client.list_pool_node_counts()}
    assert counts[POOL].dedicated.total == 2
    images = list(client.list_supported_images())
    assert images and all(image.os_type == "linux" for image in images)
    assert any(image.node_agent_sku_id == "batch.node.ubuntu 24.04" for image in images)


def test_remove_nodes_with_taskcompletion_lets_the_task_finish(client: BatchClient, pool: list[str]) -> None:
    wait_until(lambda: all(node_state(client, n) == "idle" for n in pool), 60, "idle nodes")
    assert raw(client, "POST", "/jobs", {"id": "ops-remove", "poolInfo": {"poolId": POOL}}).status_code == 201
    raw(client, "POST", "/jobs/ops-remove/tasks", {"id": "short", "commandLine": "sleep 1"})
    wait_until(lambda: client.get_task("ops-remove", "short").state == "running", 30, "task running")
    node = client.get_task("ops-remove", "short").node_info.node_id
    body = {"nodeList": [node], "nodeDeallocationOption": "taskcompletion"}
    assert raw(client, "POST", f"/pools/{POOL}/removenodes", body).status_code == 202
    assert client.get_pool(POOL).target_dedicated_nodes == 1
    wait_until(lambda: node not in node_ids(client), 60, "the node removed")
    finished = client.get_task("ops-remove", "short")
    assert finished.state == "completed" and finished.execution_info.result == "success"
    assert node_state(client, node_ids(client)[0]) == "idle"
