"""Behaviours checked against Batch's documentation in the fidelity review (sources: docs/emulator.md)."""

from __future__ import annotations

from typing import Any

import pytest
from azure.batch import BatchClient

from batchrun.local.azurite import AzuriteEndpoint
from tests.emulator.conftest import raw, vm, wait_until

POOL = "Fid-Pool"


@pytest.fixture(scope="module")
def pool(client: BatchClient) -> str:
    body = {"id": POOL, "vmSize": "s", "virtualMachineConfiguration": vm(), "targetDedicatedNodes": 1}
    assert raw(client, "POST", "/pools", body).status_code == 201
    wait_until(
        lambda: (
            [node["state"] for node in raw(client, "GET", f"/pools/{POOL}/nodes").json()["value"]] == ["idle"]
        ),
        60,
        "the node to be idle",
    )
    return POOL


def task_state(client: BatchClient, job_id: str, task_id: str) -> dict[str, Any]:
    body: dict[str, Any] = raw(client, "GET", f"/jobs/{job_id}/tasks/{task_id}").json()
    return body


def test_ids_are_case_insensitive_and_case_preserving(client: BatchClient, pool: str) -> None:
    fetched = raw(client, "GET", "/pools/fid-pool")
    assert fetched.status_code == 200 and fetched.json()["id"] == POOL
    duplicate = raw(
        client, "POST", "/pools", {"id": "FID-POOL", "vmSize": "s", "virtualMachineConfiguration": vm()}
    )
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "PoolExists"
    # A job naming its pool in another case still runs there.
    assert (
        raw(client, "POST", "/jobs", {"id": "Fid-Job", "poolInfo": {"poolId": "fid-pool"}}).status_code == 201
    )
    assert (
        raw(client, "POST", "/jobs/FID-JOB/tasks", {"id": "Task1", "commandLine": "true"}).status_code == 201
    )
    again = raw(client, "POST", "/jobs/fid-job/tasks", {"id": "TASK1", "commandLine": "true"})
    assert again.status_code == 409 and again.json()["code"] == "TaskExists"
    done = wait_until(
        lambda: (body := task_state(client, "fid-job", "task1"))["state"] == "completed" and body,
        60,
        "the task to complete",
    )
    assert done["id"] == "Task1" and done["executionInfo"]["result"] == "success"
    assert done["nodeInfo"]["poolId"] == POOL


def test_conditional_header_rules(client: BatchClient, pool: str) -> None:
    etag = raw(client, "GET", f"/pools/{POOL}").headers["ETag"]
    old_date = "Sat, 01 Jan 2000 00:00:00 GMT"
    assert raw(client, "GET", f"/pools/{POOL}", headers={"If-Match": '"0x0"'}).status_code == 412
    assert raw(client, "GET", f"/pools/{POOL}", headers={"If-None-Match": etag}).status_code == 304
    assert raw(client, "GET", f"/pools/{POOL}", headers={"If-Unmodified-Since": old_date}).status_code == 412
    # If-None-Match decides when sent with If-Modified-Since; If-Match when sent with If-Unmodified-Since.
    both = {"If-None-Match": '"0x0"', "If-Modified-Since": "Fri, 01 Jan 2100 00:00:00 GMT"}
    assert raw(client, "GET", f"/pools/{POOL}", headers=both).status_code == 200
    both = {"If-Match": etag, "If-Unmodified-Since": old_date}
    assert raw(client, "GET", f"/pools/{POOL}", headers=both).status_code == 200
    mixed = raw(client, "GET", f"/pools/{POOL}", headers={"If-Match": etag, "If-None-Match": '"0x0"'})
    assert mixed.status_code == 400 and mixed.json()["code"] == "MultipleConditionHeadersNotSupported"


def test_listed_exit_code_wins_over_file_upload_error(
    client: BatchClient, pool: str, azurite: AzuriteEndpoint
) -> None:
    job = {"id": "fid-upload", "poolInfo": {"poolId": POOL}, "usesTaskDependencies": True}
    assert raw(client, "POST", "/jobs", job).status_code == 201
    # Azurite refuses an unsigned write at once, so the upload fails without retries.
    outputs = [
        {
            "filePattern": "out.txt",
            "destination": {"container": {"containerUrl": f"{azurite.blob_url}/nowhere"}},
            "uploadOptions": {"uploadCondition": "taskcompletion"},
        }
    ]
    listed = {
        "exitCodes": [{"code": 0, "exitOptions": {"dependencyAction": "satisfy"}}],
        "fileUploadError": {"dependencyAction": "block"},
    }
    for task_id, conditions in (("1", listed), ("2", {"fileUploadError": {"dependencyAction": "block"}})):
        task = {
            "id": task_id,
            "commandLine": "/bin/sh -c 'echo x > out.txt'",
            "outputFiles": outputs,
            "exitConditions": conditions,
        }
        assert raw(client, "POST", "/jobs/fid-upload/tasks", task).status_code == 201
    for dependent, upstream in (("after-1", "1"), ("after-2", "2")):
        body = {"id": dependent, "commandLine": "true", "dependsOn": {"taskIds": [upstream]}}
        assert raw(client, "POST", "/jobs/fid-upload/tasks", body).status_code == 201
    wait_until(
        lambda: task_state(client, "fid-upload", "after-1")["state"] == "completed",
        60,
        "the dependent of the listed exit code to run",
    )
    wait_until(
        lambda: task_state(client, "fid-upload", "2")["state"] == "completed", 60, "task 2 to complete"
    )
    for task_id in ("1", "2"):
        info = task_state(client, "fid-upload", task_id)["executionInfo"]
        assert info["exitCode"] == 0 and info["failureInfo"]["code"] == "FileUploadMiscError", info
    # Exit code 0 is not listed for task 2, so fileUploadError (block) applies: its dependent never runs.
    assert task_state(client, "fid-upload", "after-2")["state"] == "active"


def test_disable_terminate_ends_running_tasks_only(client: BatchClient, pool: str) -> None:
    assert (
        raw(client, "POST", "/jobs", {"id": "fid-disable", "poolInfo": {"poolId": POOL}}).status_code == 201
    )
    # One node with one slot: "long" runs while "waiting" stays active behind it.
    assert (
        raw(client, "POST", "/jobs/fid-disable/tasks", {"id": "long", "commandLine": "sleep 60"}).status_code
        == 201
    )
    wait_until(
        lambda: task_state(client, "fid-disable", "long")["state"] == "running", 30, "the long task to run"
    )
    assert (
        raw(client, "POST", "/jobs/fid-disable/tasks", {"id": "waiting", "commandLine": "true"}).status_code
        == 201
    )
    assert raw(client, "POST", "/jobs/fid-disable/disable", {"disableTasks": "terminate"}).status_code == 202
    wait_until(
        lambda: raw(client, "GET", "/jobs/fid-disable").json()["state"] == "disabled",
        30,
        "the job to be disabled",
    )
    ended = task_state(client, "fid-disable", "long")
    assert ended["state"] == "completed" and ended["executionInfo"]["failureInfo"]["code"] == "TaskEnded"
    assert task_state(client, "fid-disable", "waiting")["state"] == "active"
    assert raw(client, "POST", "/jobs/fid-disable/enable").status_code == 202
    wait_until(
        lambda: task_state(client, "fid-disable", "waiting")["state"] == "completed",
        30,
        "the waiting task to run",
    )
