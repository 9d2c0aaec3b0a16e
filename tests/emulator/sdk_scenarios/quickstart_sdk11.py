"""The call sequence of Azure-Samples/batch-python-quickstart, written against azure-batch 11.0.0 (msrest).

Run by tests/emulator/test_pinned_sdks.py with the interpreter of a virtual environment holding the pinned
SDK; the account settings come from the environment. Prints one line per step; exits non-zero on failure.
"""

import datetime
import io
import os
import sys
import time

import azure.batch.models as batchmodels
from azure.batch import BatchServiceClient
from azure.batch.batch_auth import SharedKeyCredentials
from azure.storage.blob import BlobSasPermissions, BlobServiceClient, generate_blob_sas

BATCH_URL, BATCH_ACCOUNT, BATCH_KEY = (
    os.environ["BATCH_URL"],
    os.environ["BATCH_ACCOUNT"],
    os.environ["BATCH_KEY"],
)
STORAGE_URL, STORAGE_ACCOUNT, STORAGE_KEY = (
    os.environ["STORAGE_URL"],
    os.environ["STORAGE_ACCOUNT"],
    os.environ["STORAGE_KEY"],
)
POOL_ID, JOB_ID = "PythonQuickstartPool", "PythonQuickstartJob"


def main() -> None:
    blobs = BlobServiceClient(account_url=STORAGE_URL, credential=STORAGE_KEY)
    blobs.create_container("input")
    files = []
    for index in range(3):
        name = f"taskdata{index}.txt"
        blobs.get_blob_client("input", name).upload_blob(
            f"contents of file {index}\n".encode(), overwrite=True
        )
        sas = generate_blob_sas(
            STORAGE_ACCOUNT,
            "input",
            name,
            account_key=STORAGE_KEY,
            permission=BlobSasPermissions(read=True),
            expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=2),
        )
        files.append(batchmodels.ResourceFile(http_url=f"{STORAGE_URL}/input/{name}?{sas}", file_path=name))
    print("uploaded inputs")

    client = BatchServiceClient(SharedKeyCredentials(BATCH_ACCOUNT, BATCH_KEY), batch_url=BATCH_URL)
    client.pool.add(
        batchmodels.PoolAddParameter(
            id=POOL_ID,
            virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
                image_reference=batchmodels.ImageReference(
                    publisher="canonical",
                    offer="0001-com-ubuntu-server-focal",
                    sku="20_04-lts",
                    version="latest",
                ),
                node_agent_sku_id="batch.node.ubuntu 20.04",
            ),
            vm_size="STANDARD_DS1_V2",
            target_dedicated_nodes=2,
        )
    )
    print("pool added")
    client.job.add(
        batchmodels.JobAddParameter(id=JOB_ID, pool_info=batchmodels.PoolInformation(pool_id=POOL_ID))
    )
    print("job added")
    tasks = [
        batchmodels.TaskAddParameter(
            id=f"Task{index}", command_line=f'/bin/bash -c "cat {item.file_path}"', resource_files=[item]
        )
        for index, item in enumerate(files)
    ]
    client.task.add_collection(JOB_ID, tasks)
    print("tasks added")
    deadline = time.monotonic() + 120
    while any(task.state != batchmodels.TaskState.completed for task in client.task.list(JOB_ID)):
        if time.monotonic() > deadline:
            sys.exit("tasks did not complete")
        time.sleep(0.5)
    for task in client.task.list(JOB_ID):
        node_id = client.task.get(JOB_ID, task.id).node_info.node_id
        output = io.BytesIO()
        for chunk in client.file.get_from_task(JOB_ID, task.id, "stdout.txt"):
            output.write(chunk)
        print(f"{task.id} on {node_id}: {output.getvalue().decode().strip()}")
    blobs.delete_container("input")
    client.job.delete(JOB_ID)
    client.pool.delete(POOL_ID)
    print("cleaned up")


main()
