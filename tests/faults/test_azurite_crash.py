"""Azurite SIGKILLed right after tasks uploaded their outputs: no succeeded task is left without its outputs.

Azurite acknowledges a blob before its index (saved every 5 s) holds it, so a crash just after the uploads
forgets them. On the local target started by the test, a job of several tasks uploads two outputs each
(a literal file and a wildcard folder) through a write-only SAS; the moment every task has completed, one
task's output file is deleted from its node folder (so that output cannot be uploaded again) and Azurite is
SIGKILLed. After the supervisor's restart and its check of the window's uploads:

* every output of every succeeded task is in storage with its content;
* a task whose lost output could not be uploaded again is failed: UserError / FileUploadMiscError.

Whether Azurite saved its index between the last upload and the kill is chance (a 5 s timer), so the scenario
runs again (new job) until a round showed both an output uploaded again and the victim failed, at most
:data:`ROUNDS` times; every round checks the guarantee above.

Also: an application package version whose zip Azurite lost goes back to Pending (and uploading and activating
it again works); after a crash the moment ``batchrun apply --wait`` of the hello workload returns, the
outputs are back before any apply, and one more apply leaves nothing to change. The loss window reaches back
before Azurite's last index save.
"""

from __future__ import annotations

import io
import os
import re
import signal
import time
import zipfile
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch import models as mgmt_models
from azure.storage.blob import (
    BlobClient,
    BlobServiceClient,
    ContainerClient,
    ContainerSasPermissions,
    generate_container_sas,
)

from batchrun.local.target import LocalTarget, start, stop
from tests.conftest import tools_dir

TASKS = 6
ROUNDS = 4
POOL = "crash-pool"
CONTAINER = "crash-outputs"
REPORT = re.compile(
    r"task outputs after Azurite's restart: (\d+) output blob\(s\) checked, (\d+) uploaded again"
)


@pytest.fixture
def target(tmp_path: Path) -> Iterator[LocalTarget]:
    home = tmp_path / "home"
    try:
        yield start(home, tools_dir=tools_dir())
    finally:
        stop(home)


def wait(condition: Callable[[], object], timeout: float, what: str, pause: float = 0.2) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(pause)


def azurite_pid(home: Path) -> int:
    import json

    pid: int = json.loads((home / "local" / "target.json").read_text())["azurite"]["pid"]
    return pid


def expected_outputs(round_number: int, index: int) -> dict[str, bytes]:
    """The blobs task ``index`` of a round uploads, with their content."""
    lines = "".join(f"{number}\n" for number in range(1, 2000 * (index + 1) + 1)).encode()
    return {
        f"r{round_number}/t{index}/result.txt": f"task {index} of round {round_number}\n".encode(),
        f"r{round_number}/t{index}/data/lines.txt": lines,
    }


def task_for(
    round_number: int, index: int, container_url: str, victim: bool
) -> models.BatchTaskCreateOptions:
    # The victim sleeps longer, so it completes last: its upload is the newest when Azurite is killed.
    command = (
        f'/bin/sh -c \'sleep {3 if victim else 1}; echo "task {index} of round {round_number}" > result.txt; '
        f"mkdir -p data; seq 1 {2000 * (index + 1)} > data/lines.txt'"
    )

    def output(pattern: str, path: str) -> models.OutputFile:
        return models.OutputFile(
            file_pattern=pattern,
            destination=models.OutputFileDestination(
                container=models.OutputFileBlobContainerDestination(container_url=container_url, path=path)
            ),
            upload_options=models.OutputFileUploadConfiguration(
                upload_condition=models.OutputFileUploadCondition.TASK_SUCCESS
            ),
        )

    prefix = f"r{round_number}/t{index}"
    return models.BatchTaskCreateOptions(
        id=f"t{index}",
        command_line=command,
        output_files=[output("result.txt", f"{prefix}/result.txt"), output("data/**/*", f"{prefix}/data")],
    )


def stored(container: ContainerClient, name: str) -> bytes | None:
    try:
        return container.download_blob(name).readall()
    except ResourceNotFoundError:
        return None


def test_outputs_uploaded_just_before_an_azurite_crash_are_in_storage(target: LocalTarget) -> None:
    home = target.home
    log_file = home / "local" / "logs" / "emulator.log"
    blobs = BlobServiceClient.from_connection_string(target.connection_string)
    container = blobs.create_container(CONTAINER)
    token = generate_container_sas(  # write-only, as Batch asks for: the emulator reads back with the key
        target.storage_account_name,
        CONTAINER,
        account_key=target.storage_account_key,
        permission=ContainerSasPermissions(write=True, create=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    container_url = f"{container.url}?{token}"
    client = BatchClient(target.batch_url, AzureNamedKeyCredential(target.account_name, target.account_key))
    client.create_pool(
        models.BatchPoolCreateOptions(
            id=POOL,
            vm_size="standard_d2s_v3",
            target_dedicated_nodes=1,
            task_slots_per_node=TASKS,
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
        )
    )
    restored_seen = victim_failed_seen = False
    for round_number in range(ROUNDS):
        job_id = f"crash-job-{round_number}"
        victim = TASKS - 1
        client.create_job(
            models.BatchJobCreateOptions(id=job_id, pool_info=models.BatchPoolInfo(pool_id=POOL))
        )
        client.create_tasks(
            job_id,
            [task_for(round_number, index, container_url, index == victim) for index in range(TASKS)],
        )
        wait(
            lambda: client.get_job_task_counts(job_id).task_counts.completed == TASKS,  # noqa: B023
            180,
            "the tasks to complete",
            pause=0.05,
        )
        # The victim's output file disappears from the node (a lost disk, a cleanup): if Azurite lost its
        # upload, it cannot be uploaded again.
        victim_files = list(
            (home / "local" / "nodes").glob(f"*/*/workitems/{job_id}/job-1/t{victim}/wd/result.txt")
        )
        assert len(victim_files) == 1, victim_files
        victim_files[0].unlink()
        killed = azurite_pid(home)
        os.kill(killed, signal.SIGKILL)

        wait(lambda: azurite_pid(home) != killed, 60, "the supervisor to restart Azurite")  # noqa: B023
        wait(
            lambda: len(REPORT.findall(log_file.read_text())) > round_number,  # noqa: B023
            120,
            "the check of the outputs after the restart",
        )
        uploaded_again = int(REPORT.findall(log_file.read_text())[round_number][1])

        tasks = {task.id: task for task in client.list_tasks(job_id)}
        assert sorted(tasks) == [f"t{index}" for index in range(TASKS)]
        for index in range(TASKS):
            info = tasks[f"t{index}"].execution_info
            assert info is not None and tasks[f"t{index}"].state == models.BatchTaskState.COMPLETED
            if info.result == models.BatchTaskExecutionResult.SUCCESS:
                for name, content in expected_outputs(round_number, index).items():
                    assert stored(container, name) == content, (
                        f"{job_id}/t{index} succeeded but {name} is lost"
                    )
            else:
                # Only the victim may fail, and only because its lost output could not be uploaded again.
                assert index == victim, f"{job_id}/t{index} failed: {info.failure_info}"
                assert info.failure_info is not None
                assert info.failure_info.category == models.BatchErrorSourceCategory.USER_ERROR
                assert info.failure_info.code == "FileUploadMiscError"
                assert "result.txt" in (info.failure_info.message or "")
                assert stored(container, f"r{round_number}/t{victim}/result.txt") is None
                victim_failed_seen = True
        restored_seen = restored_seen or uploaded_again > 0
        if restored_seen and victim_failed_seen:
            break
    client.close()
    assert restored_seen, f"in {ROUNDS} rounds Azurite never lost an upload before its kill"
    assert victim_failed_seen, f"in {ROUNDS} rounds Azurite never lost the victim's upload"


class LocalToken:
    """A TokenCredential handing out the local target's bearer token (management plane)."""

    def __init__(self, token: str) -> None:
        self.token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self.token, int(time.time()) + 3600)


class AllowBearerOverHttp(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """azure-core refuses bearer tokens on http:// URLs unless the request context opts out."""

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        request.context["enforce_https"] = False


def package_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tool.sh", "#!/bin/sh\necho tool\n")
    return buffer.getvalue()


def test_a_package_whose_zip_azurite_lost_is_pending_again_until_uploaded(target: LocalTarget) -> None:
    log_file = target.home / "local" / "logs" / "emulator.log"
    mgmt = BatchManagementClient(
        LocalToken(target.token),
        target.subscription_id,
        base_url=target.batch_url,
        per_call_policies=[AllowBearerOverHttp()],
    )
    group, account = target.resource_group, target.batch_account_name
    mgmt.application.create(group, account, "tools", mgmt_models.Application(properties={}))
    activate = mgmt_models.ActivateApplicationPackageParameters(format="zip")
    blobs = BlobServiceClient.from_connection_string(target.connection_string)
    # Whether Azurite saved its index between the upload and the kill is chance: a version whose zip
    # survived must be Active with its zip; one that lost it must be Pending. Until one lost it.
    for attempt, name in enumerate(("1.0", "1.1", "1.2")):
        version = mgmt.application_package.create(group, account, "tools", name)
        BlobClient.from_blob_url(version.properties.storage_url).upload_blob(package_zip(), overwrite=True)
        mgmt.application_package.activate(group, account, "tools", name, activate)
        killed = azurite_pid(target.home)
        os.kill(killed, signal.SIGKILL)  # the zip was acknowledged a moment ago: most likely not saved yet

        wait(lambda: azurite_pid(target.home) != killed, 60, "the supervisor to restart Azurite")  # noqa: B023
        wait(
            lambda: len(REPORT.findall(log_file.read_text())) > attempt,  # noqa: B023
            120,
            "the check after the restart",
        )
        state = mgmt.application_package.get(group, account, "tools", name).properties.state
        zip_blob = blobs.get_blob_client("app-packages", f"tools/{name}/tools-{name}.zip")
        if state == mgmt_models.PackageState.ACTIVE:
            assert zip_blob.exists(), f"tools@{name} is Active but its zip is gone"
            continue
        assert state == mgmt_models.PackageState.PENDING
        assert f"Pending until the next apply uploads it: tools@{name}" in log_file.read_text()
        # What the next apply does for a Pending version: upload to its storage URL and activate.
        again = mgmt.application_package.get(group, account, "tools", name)
        BlobClient.from_blob_url(again.properties.storage_url).upload_blob(package_zip(), overwrite=True)
        mgmt.application_package.activate(group, account, "tools", name, activate)
        assert mgmt.application_package.get(group, account, "tools", name).properties.state == "Active"
        assert zip_blob.exists()
        return
    pytest.fail("Azurite saved every package zip before its kill, three times in a row")


def test_the_loss_window_reaches_back_before_azurite_last_saved_its_index(tmp_path: Path) -> None:
    from batchrun.local.emulator_daemon import AZURITE_INDEX_FILE, LOSS_WINDOW_SECONDS, loss_window_start

    found_dead = time.time()
    assert loss_window_start(tmp_path, found_dead) == found_dead - LOSS_WINDOW_SECONDS  # no index yet
    index = tmp_path / AZURITE_INDEX_FILE
    index.write_text("{}")
    os.utime(index, (found_dead - 3, found_dead - 3))  # saved 3 s before: the usual case
    assert loss_window_start(tmp_path, found_dead) == pytest.approx(found_dead - 3 - LOSS_WINDOW_SECONDS)
    os.utime(index, (found_dead + 1, found_dead + 1))  # saved after the crash was noticed: not its index
    assert loss_window_start(tmp_path, found_dead) == found_dead - LOSS_WINDOW_SECONDS
    os.utime(index, (found_dead - 40, found_dead - 40))  # a stalled Azurite had not saved for 40 s
    assert loss_window_start(tmp_path, found_dead) == pytest.approx(found_dead - 40 - LOSS_WINDOW_SECONDS)


def test_after_a_crash_right_after_apply_the_next_apply_converges(
    target: LocalTarget, tmp_path: Path
) -> None:
    """The hello workload applied, Azurite SIGKILLed the moment `apply --wait` returns: its inputs, package
    zip and outputs were acknowledged seconds before. The outputs are back at once; the next apply uploads
    the rest again, and then nothing is left to change."""
    import shutil
    import subprocess
    import sys

    repo = Path(__file__).resolve().parents[2]
    work = tmp_path / "work"
    work.mkdir()
    shutil.copy(repo / "workloads" / "hello.yaml", work)
    shutil.copytree(repo / "workloads" / "hello", work / "hello")
    env = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    env.update(BATCHRUN_HOME=str(target.home), BATCHRUN_TOOLS_DIR=str(tools_dir()), NO_COLOR="1")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "batchrun", *args],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    first = cli("apply", "hello.yaml", "--auto-approve", "--wait")
    assert first.returncode == 0, first.stdout + first.stderr
    killed = azurite_pid(target.home)
    os.kill(killed, signal.SIGKILL)
    log_file = target.home / "local" / "logs" / "emulator.log"
    wait(lambda: azurite_pid(target.home) != killed, 60, "the supervisor to restart Azurite")
    wait(lambda: REPORT.search(log_file.read_text()), 120, "the check after the restart")

    # Every succeeded task's outputs are in storage right after the restart, before any apply.
    outputs = BlobServiceClient.from_connection_string(target.connection_string).get_container_client(
        "hello-out"
    )
    names = sorted(blob.name for blob in outputs.list_blobs())
    assert names == [f"greet/{i}/out-{i}.txt" for i in (1, 2, 3)] + ["merge/merged.txt"]
    merged = outputs.download_blob("merge/merged.txt").readall().decode()
    assert merged.splitlines() == ["hello Ada (task 1)", "hello Grace (task 2)", "hello Linus (task 3)"]

    second = cli("apply", "hello.yaml", "--auto-approve", "--wait")
    assert second.returncode == 0, second.stdout + second.stderr
    plan = cli("plan", "hello.yaml", "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    assert "No changes." in plan.stdout
    fetched = cli("outputs", "hello.yaml", "-d", "out")
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert (work / "out" / "merge" / "merged.txt").read_text() == merged
    assert "Traceback" not in first.stderr + second.stderr + plan.stderr + fetched.stderr
