"""The shared session fixtures: a task runs on the local target through the unmodified SDKs."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone

from azure.batch import BatchClient, models
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from batchrun.local.target import LocalTarget, status


def test_a_task_runs_on_the_session_target(
    local_target: LocalTarget, batch_client: BatchClient, blob_service: BlobServiceClient
) -> None:
    assert status(local_target.home).running
    outputs = blob_service.create_container("fixture-outputs")
    token = generate_container_sas(
        local_target.storage_account_name,
        "fixture-outputs",
        account_key=local_target.storage_account_key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    batch_client.create_pool(
        models.BatchPoolCreateOptions(
            id="fixture-pool",
            vm_size="standard_d2s_v3",
            target_dedicated_nodes=1,
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
        )
    )
    batch_client.create_job(
        models.BatchJobCreateOptions(id="fixture-job", pool_info=models.BatchPoolInfo(pool_id="fixture-pool"))
    )
    batch_client.create_task(
        "fixture-job",
        models.BatchTaskCreateOptions(
            id="hello",
            command_line="/bin/sh -c 'echo hello from $AZ_BATCH_NODE_ID; echo 42 > answer.txt'",
            output_files=[
                models.OutputFile(
                    file_pattern="answer.txt",
                    destination=models.OutputFileDestination(
                        container=models.OutputFileBlobContainerDestination(
                            container_url=f"{outputs.url}?{token}", path="answers/hello.txt"
                        )
                    ),
                    upload_options=models.OutputFileUploadConfiguration(
                        upload_condition=models.OutputFileUploadCondition.TASK_COMPLETION
                    ),
                )
            ],
        ),
    )
    deadline = time.monotonic() + 60
    while (task := batch_client.get_task("fixture-job", "hello")).state != models.BatchTaskState.COMPLETED:
        assert time.monotonic() < deadline, f"task still {task.state}"
        time.sleep(0.2)
    assert task.execution_info is not None and task.execution_info.exit_code == 0
    assert task.node_info is not None
    stdout = b"".join(batch_client.download_task_file("fixture-job", "hello", "stdout.txt")).decode()
    assert stdout == f"hello from {task.node_info.node_id}\n"
    assert outputs.download_blob("answers/hello.txt").readall() == b"42\n"
    # Leave the shared session target as it was found.
    batch_client.begin_delete_job("fixture-job").result()
    batch_client.begin_delete_pool("fixture-pool").result()
    blob_service.delete_container("fixture-outputs")
