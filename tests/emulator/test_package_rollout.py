"""A new application package version reaches a node only when the node boots again (reboot or reimage),
as on Azure: nodes already running keep the versions they installed."""

from __future__ import annotations

import io
import zipfile

from azure.batch import BatchClient
from azure.core.rest import HttpRequest
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch import models as mgmt_models
from azure.storage.blob import BlobClient

from tests.emulator.conftest import ACCOUNT, API, STORAGE_API_VERSION, raw, vm, wait_until
from tests.emulator.test_management import RG, mgmt

__all__ = ["mgmt"]


def version_zip(text: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tool.sh", f"#!/bin/sh\necho {text}\n")
    return buffer.getvalue()


def publish(mgmt: BatchManagementClient, version: str, text: str) -> None:
    package = mgmt.application_package.create(RG, ACCOUNT, "rollout", version)
    BlobClient.from_blob_url(package.properties.storage_url, api_version=STORAGE_API_VERSION).upload_blob(
        version_zip(text), overwrite=True
    )
    mgmt.application_package.activate(
        RG, ACCOUNT, "rollout", version, mgmt_models.ActivateApplicationPackageParameters(format="zip")
    )
    mgmt.application.update(
        RG,
        ACCOUNT,
        "rollout",
        mgmt_models.Application(properties=mgmt_models.ApplicationProperties(default_version=version)),
    )


def run_tool(client: BatchClient, task_id: str) -> str:
    body = {"id": task_id, "commandLine": "/bin/sh -c 'sh $AZ_BATCH_APP_PACKAGE_rollout/tool.sh'"}
    assert raw(client, "POST", "/jobs/rollout-job/tasks", body).status_code == 201
    wait_until(lambda: client.get_task("rollout-job", task_id).state == "completed", 60, f"{task_id} done")
    request = HttpRequest("GET", f"/jobs/rollout-job/tasks/{task_id}/files/stdout.txt?{API}")
    return bytes(client.send_request(request, stream=True).read()).decode().strip()


def test_new_package_version_waits_for_a_reboot(mgmt: BatchManagementClient, client: BatchClient) -> None:
    mgmt.application.create(RG, ACCOUNT, "rollout", mgmt_models.Application())
    publish(mgmt, "1.0", "tool-v1")
    pool = {
        "id": "rollout-pool",
        "vmSize": "s",
        "virtualMachineConfiguration": vm(),
        "targetDedicatedNodes": 1,
        "applicationPackageReferences": [{"applicationId": "rollout"}],
    }
    assert raw(client, "POST", "/pools", pool).status_code == 201
    assert (
        raw(
            client, "POST", "/jobs", {"id": "rollout-job", "poolInfo": {"poolId": "rollout-pool"}}
        ).status_code
        == 201
    )
    assert run_tool(client, "before") == "tool-v1"
    publish(mgmt, "2.0", "tool-v2")
    assert run_tool(client, "running-node") == "tool-v1"  # the node keeps what it installed at boot
    node = next(iter(client.list_nodes("rollout-pool"))).id
    assert raw(client, "POST", f"/pools/rollout-pool/nodes/{node}/reboot", {}).status_code == 202
    wait_until(lambda: client.get_node("rollout-pool", node).state == "idle", 60, "node rebooted")
    assert run_tool(client, "after-reboot") == "tool-v2"
