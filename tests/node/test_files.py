"""Resource files, output files and application packages against a real Azurite."""

from __future__ import annotations

import io
import stat
import threading
import uuid
import zipfile
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from batchrun.emulator.node import NodeIdentity, PackageBlob, StorageAccess, TaskOutcome, task_directory
from batchrun.local.azurite import AzuriteEndpoint
from tests.node.conftest import container_sas_url, run


@pytest.fixture
def container(node_blobs: BlobServiceClient) -> Iterator[ContainerClient]:
    client = node_blobs.create_container(f"c{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()


def test_resource_files_of_all_three_kinds(
    node: NodeIdentity, storage: StorageAccess, azurite: AzuriteEndpoint, container: ContainerClient
) -> None:
    container.upload_blob("single.txt", b"one")
    container.upload_blob("data/a.txt", b"A")
    container.upload_blob("data/sub/b.txt", b"B")
    container.upload_blob("other/c.txt", b"C")
    read_sas = container_sas_url(azurite, container.container_name, "rl")
    base, query = read_sas.split("?", 1)
    outcome = run(
        node,
        {
            "commandLine": "/bin/sh -c 'find . -type f | sort'",
            "resourceFiles": [
                {"httpUrl": f"{base}/single.txt?{query}", "filePath": "in/renamed.txt", "fileMode": "0755"},
                {"storageContainerUrl": read_sas, "blobPrefix": "data/", "filePath": "fromsas"},
                {"autoStorageContainerName": container.container_name, "blobPrefix": "other/"},
            ],
        },
        storage,
    )
    assert outcome.result == "success", outcome.failure_info
    wd = task_directory(node, "job1", "task1") / "wd"
    assert (wd / "in" / "renamed.txt").read_bytes() == b"one"
    assert stat.S_IMODE((wd / "in" / "renamed.txt").stat().st_mode) == 0o755
    assert (wd / "fromsas" / "data" / "a.txt").read_bytes() == b"A"
    assert (wd / "fromsas" / "data" / "sub" / "b.txt").read_bytes() == b"B"
    assert stat.S_IMODE((wd / "fromsas" / "data" / "a.txt").stat().st_mode) == 0o770
    assert (wd / "other" / "c.txt").read_bytes() == b"C"
    assert not (wd / "fromsas" / "other").exists()  # blobPrefix filtered


def test_resource_download_failure_means_the_task_does_not_run(
    node: NodeIdentity, storage: StorageAccess, azurite: AzuriteEndpoint, container: ContainerClient
) -> None:
    base, query = container_sas_url(azurite, container.container_name, "r").split("?", 1)
    outcome = run(
        node,
        {
            "commandLine": "/bin/sh -c 'touch ran'",
            "resourceFiles": [{"httpUrl": f"{base}/missing.txt?{query}", "filePath": "x.txt"}],
        },
        storage,
    )
    assert outcome.result == "failure" and outcome.exit_code is None
    assert outcome.failure_stage == "preprocessing"
    info = outcome.failure_info
    assert info is not None and info["code"] == "BlobNotFound" and info["category"] == "usererror"
    assert "sig=REDACTED" in str(info["details"]) and query.split("sig=")[1][:10] not in str(info)
    assert not (task_directory(node, "job1", "task1") / "wd" / "ran").exists()


def test_resource_file_path_cannot_escape_the_working_directory(
    node: NodeIdentity, storage: StorageAccess, container: ContainerClient
) -> None:
    container.upload_blob("f.txt", b"x")
    outcome = run(
        node,
        {
            "commandLine": "true",
            "resourceFiles": [
                {"autoStorageContainerName": container.container_name, "filePath": "../../escape"}
            ],
        },
        storage,
    )
    assert outcome.result == "failure" and outcome.failure_info is not None
    assert ".." in outcome.failure_info["message"]
    assert not (node.root / "workitems" / "job1" / "escape").exists()


def _outputs(sas: str, condition: str, pattern: str, path: str = "") -> dict[str, object]:
    destination: dict[str, object] = {"containerUrl": sas}
    if path:
        destination["path"] = path
    return {
        "filePattern": pattern,
        "destination": {"container": destination},
        "uploadOptions": {"uploadCondition": condition},
    }


def _run_with_outputs(node: NodeIdentity, command: str, outputs: list[dict[str, object]]) -> TaskOutcome:
    return run(node, {"commandLine": f"/bin/sh -c '{command}'", "outputFiles": outputs})


def test_output_upload_conditions(
    node: NodeIdentity, azurite: AzuriteEndpoint, container: ContainerClient
) -> None:
    sas = container_sas_url(azurite, container.container_name, "rwl")
    outputs = [
        _outputs(sas, "tasksuccess", "out.txt", "ok/out.txt"),
        _outputs(sas, "taskfailure", "out.txt", "failed/out.txt"),
        _outputs(sas, "taskcompletion", "out.txt", "always/out.txt"),
        _outputs(sas, "taskcompletion", "../std*.txt", "logs"),
    ]
    good = _run_with_outputs(node, "echo good > out.txt; echo hello", outputs)
    assert good.result == "success"
    names = {blob.name for blob in container.list_blobs()}
    assert names == {"ok/out.txt", "always/out.txt", "logs/stdout.txt", "logs/stderr.txt"}
    assert container.download_blob("logs/stdout.txt").readall() == b"hello\n"
    for blob in list(names):
        container.delete_blob(blob)

    bad = run(
        node,
        {"commandLine": "/bin/sh -c 'echo bad > out.txt; exit 2'", "outputFiles": outputs},
        task_id="task2",
    )
    assert bad.result == "failure" and bad.exit_code == 2
    assert bad.failure_info is not None and bad.failure_info["code"] == "FailureExitCode"
    names = {blob.name for blob in container.list_blobs()}
    assert names == {"failed/out.txt", "always/out.txt", "logs/stdout.txt", "logs/stderr.txt"}
    assert container.download_blob("failed/out.txt").readall() == b"bad\n"
    log = (task_directory(node, "job1", "task2") / "fileuploadout.txt").read_text()
    assert "failed/out.txt" in log and "sig=REDACTED" in log


def test_output_wildcards_paths_and_variables(
    node: NodeIdentity, azurite: AzuriteEndpoint, container: ContainerClient
) -> None:
    sas = container_sas_url(azurite, container.container_name, "rwl")
    outcome = run(
        node,
        {
            "commandLine": "/bin/sh -c 'mkdir -p res/a/b && echo 1 > res/x.csv && echo 2 > res/a/b/y.csv && "
            "echo 3 > res/a/z.txt && echo 4 > single.dat'",
            "environmentSettings": [{"name": "KIND", "value": "csv"}],
            "outputFiles": [
                _outputs(sas, "taskcompletion", "res/**/*.$KIND", "results/${AZ_BATCH_TASK_ID}"),
                _outputs(sas, "taskcompletion", "res/a/?.txt"),
                _outputs(sas, "taskcompletion", "single.dat"),
                {
                    **_outputs(sas, "taskcompletion", "single.dat", "typed.json"),
                    "destination": {
                        "container": {
                            "containerUrl": sas,
                            "path": "typed.json",
                            "uploadHeaders": [{"name": "Content-Type", "value": "application/json"}],
                        }
                    },
                },
            ],
        },
        None,
    )
    assert outcome.result == "success", outcome.failure_info
    names = {blob.name for blob in container.list_blobs()}
    assert names == {
        "results/${AZ_BATCH_TASK_ID}/x.csv",
        "results/${AZ_BATCH_TASK_ID}/a/b/y.csv",
        "z.txt",
        "single.dat",
        "typed.json",
    }
    properties = container.get_blob_client("typed.json").get_blob_properties()
    assert properties.content_settings.content_type == "application/json"


def test_output_upload_failure_is_file_upload_error(
    node: NodeIdentity, azurite: AzuriteEndpoint, container: ContainerClient
) -> None:
    read_only = container_sas_url(azurite, container.container_name, "r")
    outcome = _run_with_outputs(node, "echo x > out.txt", [_outputs(read_only, "taskcompletion", "out.txt")])
    assert outcome.exit_code == 0 and outcome.result == "failure"
    assert outcome.failure_stage == "fileupload"
    assert outcome.failure_info is not None and outcome.failure_info["code"] == "FileUploadMiscError"
    errors = (task_directory(node, "job1", "task1") / "fileuploaderr.txt").read_text()
    assert "out.txt" in errors and "403" in errors


def _package_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        info = zipfile.ZipInfo("bin/tool.sh")
        info.external_attr = (stat.S_IFREG | 0o755) << 16
        bundle.writestr(info, "#!/bin/sh\necho tool-ran $1\n")
        bundle.writestr("README", "package readme")
    return buffer.getvalue()


def test_application_package_extracted_once_with_variables(
    node: NodeIdentity, storage: StorageAccess, container: ContainerClient
) -> None:
    container.upload_blob("MyApp-1.2-blob.zip", _package_zip())
    package = PackageBlob("MyApp", "1.2-beta", container.container_name, "MyApp-1.2-blob.zip")
    spec = {
        "commandLine": "/bin/sh -c '$AZ_BATCH_APP_PACKAGE_MyApp_1_2_beta/bin/tool.sh x; env'",
        "applicationPackageReferences": [{"applicationId": "MyApp"}],
    }
    outcomes: list[TaskOutcome] = []
    threads = [
        threading.Thread(
            target=lambda i=i: outcomes.append(run(node, spec, storage, task_id=f"t{i}", packages=(package,)))
        )
        for i in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [outcome.result for outcome in outcomes] == ["success"] * 3, [o.failure_info for o in outcomes]
    folders = [path for path in (node.root / "applications").iterdir() if not path.name.startswith(".")]
    assert len(folders) == 1 and folders[0].name.startswith("MyApp1.2-beta")
    stdout = (task_directory(node, "job1", "t0") / "stdout.txt").read_text()
    assert stdout.startswith("tool-ran x\n")
    env = dict(line.split("=", 1) for line in stdout.splitlines()[1:] if "=" in line)
    assert env["AZ_BATCH_APP_PACKAGE_MyApp_1_2_beta"] == str(folders[0])
    assert env["AZ_BATCH_APP_PACKAGE_myapp_1_2_beta"] == str(folders[0])
    assert env["AZ_BATCH_APP_PACKAGE_MyApp"] == str(folders[0])  # referenced without a version


def test_missing_application_package_is_a_preprocessing_failure(
    node: NodeIdentity, storage: StorageAccess, container: ContainerClient
) -> None:
    package = PackageBlob("ghost", "1", container.container_name, "nothing.zip")
    outcome = run(node, {"commandLine": "true"}, storage, packages=(package,))
    assert outcome.result == "failure" and outcome.exit_code is None
    assert outcome.failure_info is not None and outcome.failure_info["code"] == "ApplicationPackageError"
    assert outcome.failure_stage == "preprocessing"
