"""The call sequences of Azure-Samples/azure-batch-samples Python/Batch (sample1 hello world, sample1 job
preparation and release, sample2 pools and resource files), written against azure-batch 12.0.0 (msrest).

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
STAMP = datetime.datetime.utcnow().strftime("%Y%m%d-%H%M%S")

client = BatchServiceClient(SharedKeyCredentials(BATCH_ACCOUNT, BATCH_KEY), batch_url=BATCH_URL)
client.config.retry_policy.retries = 5


def wait_for_tasks(job_id: str) -> None:
    deadline = time.monotonic() + 120
    while any(task.state != batchmodels.TaskState.completed for task in client.task.list(job_id)):
        if time.monotonic() > deadline:
            sys.exit(f"tasks of {job_id} did not complete")
        time.sleep(0.5)


def print_output(job_id: str) -> None:
    for task in client.task.list(job_id):
        for name in ("stdout.txt", "stderr.txt"):
            output = io.BytesIO()
            for chunk in client.file.get_from_task(job_id, task.id, name):
                output.write(chunk)
            print(f"{job_id}/{task.id} {name}: {output.getvalue().decode().strip()}")


def auto_pool(prefix: str) -> batchmodels.PoolInformation:
    return batchmodels.PoolInformation(
        auto_pool_specification=batchmodels.AutoPoolSpecification(
            auto_pool_id_prefix=prefix,
            pool=batchmodels.PoolSpecification(
                vm_size="STANDARD_DS1_V2",
                target_dedicated_nodes=1,
                virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
                    image_reference=batchmodels.ImageReference(
                        publisher="canonical", offer="ubuntuserver", sku="18.04-lts"
                    ),
                    node_agent_sku_id="batch.node.ubuntu 18.04",
                ),
            ),
            keep_alive=False,
            pool_lifetime_option=batchmodels.PoolLifetimeOption.job,
        )
    )


def shell(command: str) -> str:
    return f"/bin/bash -c 'set -e; set -o pipefail; {command}; wait'"


def hello_world() -> None:
    job_id = f"HelloWorld-{STAMP}"
    client.job.add(batchmodels.JobAddParameter(id=job_id, pool_info=auto_pool("HelloWorld")))
    client.task.add(
        job_id=job_id,
        task=batchmodels.TaskAddParameter(
            id="HelloWorld", command_line=shell("echo Hello world from the Batch Hello world sample!")
        ),
    )
    wait_for_tasks(job_id)
    print_output(job_id)
    client.job.delete(job_id)


def prep_and_release() -> None:
    job_id = f"JobPrepRelease-{STAMP}"
    job = batchmodels.JobAddParameter(id=job_id, pool_info=auto_pool("JobPrepAndRelease"))
    job.job_preparation_task = batchmodels.JobPreparationTask(
        command_line=shell("echo job preparation task!")
    )
    job.job_release_task = batchmodels.JobReleaseTask(command_line=shell("echo job release task!"))
    client.job.add(job)
    client.task.add(
        job_id=job_id,
        task=batchmodels.TaskAddParameter(
            id="JobPrepAndRelease",
            command_line=shell("echo Hello world from the Batch Job prep and release sample!"),
        ),
    )
    wait_for_tasks(job_id)
    print_output(job_id)
    statuses = list(client.job.list_preparation_and_release_task_status(job_id))
    print(f"{job_id} preparation: {[s.job_preparation_task_execution_info.state for s in statuses]}")
    client.job.delete(job_id)


def pools_and_resource_files() -> None:
    images = client.account.list_supported_images(
        account_list_supported_images_options=batchmodels.AccountListSupportedImagesOptions(
            filter="verificationType eq 'verified'"
        )
    )
    chosen = [
        (image.node_agent_sku_id, image.image_reference)
        for image in images
        if image.image_reference.publisher.lower() == "canonical"
        and image.image_reference.offer.lower() == "ubuntuserver"
        and image.image_reference.sku.startswith("18.04")
    ]
    sku, image = chosen[0]
    blobs = BlobServiceClient(account_url=STORAGE_URL, credential=STORAGE_KEY)
    blobs.create_container("poolsandresourcefiles")
    blobs.get_blob_client("poolsandresourcefiles", "simple_task.py").upload_blob(
        b"import os\nprint('simpletask.py listing files:')\nfor name in os.listdir('.'):\n    print(name)\n",
        overwrite=True,
    )
    sas = generate_blob_sas(
        STORAGE_ACCOUNT,
        "poolsandresourcefiles",
        "simple_task.py",
        account_key=STORAGE_KEY,
        permission=BlobSasPermissions.from_string("r"),
        expiry=datetime.datetime.utcnow() + datetime.timedelta(hours=1),
    )
    url = f"{STORAGE_URL}/poolsandresourcefiles/simple_task.py?{sas}"
    pool_id = "PoolsAndResourceFilesPool"
    python = os.environ.get("TASK_PYTHON", "python")
    pool = batchmodels.PoolAddParameter(
        id=pool_id,
        virtual_machine_configuration=batchmodels.VirtualMachineConfiguration(
            image_reference=image, node_agent_sku_id=sku
        ),
        vm_size="STANDARD_DS1_V2",
        target_dedicated_nodes=1,
        start_task=batchmodels.StartTask(
            command_line=f"{python} simple_task.py",
            resource_files=[batchmodels.ResourceFile(file_path="simple_task.py", http_url=url)],
        ),
    )
    if not client.pool.exists(pool_id):
        client.pool.add(pool)
    job_id = f"PoolsAndResourceFilesJob-{STAMP}"
    client.job.add(
        batchmodels.JobAddParameter(id=job_id, pool_info=batchmodels.PoolInformation(pool_id=pool_id))
    )
    client.task.add(
        job_id=job_id,
        task=batchmodels.TaskAddParameter(
            id="MyPythonTask",
            command_line=f"{python} simple_task.py",
            resource_files=[batchmodels.ResourceFile(file_path="simple_task.py", http_url=url)],
        ),
    )
    wait_for_tasks(job_id)
    print_output(job_id)
    blobs.delete_container("poolsandresourcefiles")
    client.job.delete(job_id)
    client.pool.delete(pool_id)


hello_world()
prep_and_release()
pools_and_resource_files()
print("all samples done")
