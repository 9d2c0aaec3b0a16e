"""A whole workload through the unmodified azure-batch SDK, checked against the node folders and Azurite."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from azure.batch import BatchClient, models
from azure.storage.blob import (
    BlobServiceClient,
    ContainerSasPermissions,
    generate_blob_sas,
    generate_container_sas,
)

from batchrun.emulator.node import node_root
from tests.emulator.conftest import Emulator, wait_until

POOL = "wl-pool"
JOB = "wl-job"
TASKS = 200


def image() -> models.VirtualMachineConfiguration:
    return models.VirtualMachineConfiguration(
        image_reference=models.BatchVmImageReference(
            publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
        ),
        node_agent_sku_id="batch.node.ubuntu 24.04",
    )


def sas_container_url(blob_service: BlobServiceClient, container: str, permission: str) -> str:
    credential = blob_service.credential
    token = generate_container_sas(
        credential.account_name,
        container,
        account_key=credential.account_key,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    return f"{blob_service.url.rstrip('/')}/{container}?{token}"


def task_dir(emulator: Emulator, task: models.BatchTask) -> Path:
    assert task.node_info is not None
    root = node_root(emulator.config.nodes_dir, task.node_info.pool_id, task.node_info.node_id)
    return root / "workitems" / JOB / "job-1" / task.id


@pytest.fixture(scope="module")
def workload(emulator: Emulator, client: BatchClient, blob_service: BlobServiceClient) -> dict[str, object]:
    """Runs the workload once; the tests below each check one aspect of what happened."""
    inputs = blob_service.get_container_client("wl-inputs")
    inputs.create_container()
    inputs.upload_blob("data/one.txt", b"first input\n")
    inputs.upload_blob("data/two.txt", b"second input\n")
    blob_service.get_container_client("wl-outputs").create_container()
    credential = blob_service.credential
    single_blob = generate_blob_sas(
        credential.account_name,
        "wl-inputs",
        "data/one.txt",
        account_key=credential.account_key,
        permission="r",
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    inputs_url = sas_container_url(blob_service, "wl-inputs", "rl")
    outputs_url = sas_container_url(blob_service, "wl-outputs", "rwc")

    client.create_pool(
        models.BatchPoolCreateOptions(
            id=POOL,
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=image(),
            target_dedicated_nodes=2,
            task_slots_per_node=2,
            start_task=models.BatchStartTask(
                command_line="/bin/sh -c 'echo booted > $AZ_BATCH_NODE_SHARED_DIR/booted'",
                wait_for_success=True,
            ),
        )
    )
    client.create_job(
        models.BatchJobCreateOptions(
            id=JOB,
            pool_info=models.BatchPoolInfo(pool_id=POOL),
            uses_task_dependencies=True,
            common_environment_settings=[models.EnvironmentSetting(name="GREETING", value="hello")],
        )
    )

    def output_to(path: str) -> list[models.OutputFile]:
        return [
            models.OutputFile(
                file_pattern="result.txt",
                destination=models.OutputFileDestination(
                    container=models.OutputFileBlobContainerDestination(container_url=outputs_url, path=path)
                ),
                upload_options=models.OutputFileUploadConfiguration(
                    upload_condition=models.OutputFileUploadCondition.TASK_SUCCESS
                ),
            )
        ]

    bulk = [
        models.BatchTaskCreateOptions(
            id=f"t{index:03d}",
            command_line=f"/bin/sh -c 'echo \"$GREETING {index}\"; echo {index * index} > result.txt'",
            output_files=output_to(f"results/t{index:03d}.txt"),
        )
        for index in range(TASKS)
    ]
    result = client.create_tasks(JOB, bulk, max_concurrency=2)
    extra = [
        models.BatchTaskCreateOptions(
            id="inputs",
            command_line="/bin/sh -c 'cat one.txt; cat data/one.txt data/two.txt'",
            resource_files=[
                models.ResourceFile(
                    http_url=f"{blob_service.url.rstrip('/')}/wl-inputs/data/one.txt?{single_blob}",
                    file_path="one.txt",
                ),
                models.ResourceFile(storage_container_url=inputs_url, blob_prefix="data/"),
            ],
        ),
        models.BatchTaskCreateOptions(
            id="flaky",
            command_line="/bin/sh -c 'echo run >> $AZ_BATCH_NODE_SHARED_DIR/flaky-runs; exit 3'",
            constraints=models.BatchTaskConstraints(max_task_retry_count=2),
        ),
        models.BatchTaskCreateOptions(id="chain-1", command_line="/bin/sh -c 'sleep 0.2; echo one'"),
        models.BatchTaskCreateOptions(
            id="chain-2",
            command_line="/bin/sh -c 'echo two'",
            depends_on=models.BatchTaskDependencies(task_ids=["chain-1"]),
        ),
        models.BatchTaskCreateOptions(
            id="chain-3",
            command_line="/bin/sh -c 'echo three'",
            depends_on=models.BatchTaskDependencies(task_ids=["chain-2"]),
        ),
    ]
    for task in extra:
        client.create_task(JOB, task)
    # A job with no tasks counts as complete, so switch to terminatejob only after adding them (Batch's rule).
    client.update_job(
        JOB,
        models.BatchJobUpdateOptions(all_tasks_complete_mode=models.BatchAllTasksCompleteMode.TERMINATE_JOB),
    )
    job = wait_until(
        lambda: (j := client.get_job(JOB)).state == models.BatchJobState.COMPLETED and j,
        timeout=180,
        what="the job to complete",
    )
    tasks = {task.id: task for task in client.list_tasks(JOB)}
    return {"created": result, "job": job, "tasks": tasks}


def test_create_tasks_accepted_all_200(workload: dict[str, object]) -> None:
    result = workload["created"]
    assert isinstance(result, models.BatchCreateTaskCollectionResult)
    assert len(result.result_values) == TASKS
    assert {entry.status for entry in result.result_values} == {models.BatchTaskAddStatus.SUCCESS}


def test_job_terminates_when_all_tasks_complete(workload: dict[str, object]) -> None:
    job = workload["job"]
    assert isinstance(job, models.BatchJob)
    assert job.execution_info is not None
    assert job.execution_info.termination_reason == "AllTasksComplete"
    assert job.execution_info.end_time is not None


def test_task_counts(client: BatchClient, workload: dict[str, object]) -> None:
    counts = client.get_job_task_counts(JOB)
    total = TASKS + 5
    assert counts.task_counts.completed == total
    assert counts.task_counts.succeeded == total - 1
    assert counts.task_counts.failed == 1
    assert counts.task_counts.active == counts.task_counts.running == 0
    assert counts.task_slot_counts.completed == total


def test_stdout_on_disk_and_through_the_api(
    emulator: Emulator, client: BatchClient, workload: dict[str, object]
) -> None:
    tasks = workload["tasks"]
    assert isinstance(tasks, dict)
    for index in (0, 57, TASKS - 1):
        task = tasks[f"t{index:03d}"]
        assert task.state == models.BatchTaskState.COMPLETED
        assert task.execution_info.exit_code == 0
        on_disk = (task_dir(emulator, task) / "stdout.txt").read_text()
        assert on_disk == f"hello {index}\n"
        downloaded = b"".join(client.download_task_file(JOB, task.id, "stdout.txt")).decode()
        assert downloaded == on_disk
    names = {entry.name for entry in client.list_task_files(JOB, "t000", recursive=True)}
    assert {"stdout.txt", "stderr.txt", "wd", "wd/result.txt"} <= names


def test_tasks_spread_over_two_nodes_with_two_slots(
    emulator: Emulator, client: BatchClient, workload: dict[str, object]
) -> None:
    nodes = list(client.list_nodes(POOL))
    assert len(nodes) == 2
    assert all(node.state == models.BatchNodeState.IDLE for node in nodes)
    # 205 tasks plus two retries of the flaky one.
    assert sum(node.total_tasks_run for node in nodes) == TASKS + 5 + 2
    assert all(node.total_tasks_run > 0 for node in nodes)
    for node in nodes:
        assert node.start_task_info is not None and node.start_task_info.exit_code == 0
        root = node_root(emulator.config.nodes_dir, POOL, node.id)
        assert (root / "shared" / "booted").read_text() == "booted\n"


def test_output_files_uploaded(blob_service: BlobServiceClient, workload: dict[str, object]) -> None:
    container = blob_service.get_container_client("wl-outputs")
    names = {blob.name for blob in container.list_blobs(name_starts_with="results/")}
    assert names == {f"results/t{index:03d}.txt" for index in range(TASKS)}
    assert container.download_blob("results/t012.txt").readall() == b"144\n"


def test_resource_files_downloaded(emulator: Emulator, workload: dict[str, object]) -> None:
    tasks = workload["tasks"]
    assert isinstance(tasks, dict)
    task = tasks["inputs"]
    assert task.execution_info.result == models.BatchTaskExecutionResult.SUCCESS
    folder = task_dir(emulator, task)
    assert (folder / "wd" / "one.txt").read_text() == "first input\n"
    assert (folder / "stdout.txt").read_text() == "first input\nfirst input\nsecond input\n"


def test_failing_task_retried_then_failed(emulator: Emulator, workload: dict[str, object]) -> None:
    tasks = workload["tasks"]
    assert isinstance(tasks, dict)
    info = tasks["flaky"].execution_info
    assert info.retry_count == 2
    assert info.exit_code == 3
    assert info.result == models.BatchTaskExecutionResult.FAILURE
    assert info.failure_info.code == "FailureExitCode"
    assert info.failure_info.category == models.BatchErrorSourceCategory.USER_ERROR
    runs = sum(
        path.read_text().count("run")
        for path in emulator.config.nodes_dir.glob(f"{POOL}/*/shared/flaky-runs")
    )
    assert runs == 3


def test_dependency_chain_ran_in_order(workload: dict[str, object]) -> None:
    tasks = workload["tasks"]
    assert isinstance(tasks, dict)
    one, two, three = (tasks[f"chain-{n}"].execution_info for n in (1, 2, 3))
    assert one.end_time <= two.start_time
    assert two.end_time <= three.start_time
