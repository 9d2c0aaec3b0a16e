"""Hostile input and lost writes at the node: setuid bits never reach the node, and an output storage
acknowledged but does not hold is uploaded again (or fails the task)."""

from __future__ import annotations

import io
import stat
import uuid
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from batchrun.emulator.node import NodeIdentity, PackageBlob, StorageAccess, task_directory
from batchrun.emulator.node import outputs as output_module
from batchrun.local.azurite import AzuriteEndpoint
from tests.node.conftest import container_sas_url, run


@pytest.fixture
def container(node_blobs: BlobServiceClient) -> Iterator[ContainerClient]:
    client = node_blobs.create_container(f"h{uuid.uuid4().hex[:12]}")
    yield client
    client.delete_container()


def test_setuid_bits_of_a_resource_file_mode_are_dropped(
    node: NodeIdentity, storage: StorageAccess, azurite: AzuriteEndpoint, container: ContainerClient
) -> None:
    container.upload_blob("tool", b"#!/bin/sh\necho hi\n")
    base, query = container_sas_url(azurite, container.container_name, "rl").split("?", 1)
    spec = {
        "commandLine": "true",
        "resourceFiles": [{"httpUrl": f"{base}/tool?{query}", "filePath": "tool", "fileMode": "6755"}],
    }
    outcome = run(node, spec, storage)
    assert outcome.result == "success", outcome.failure_info
    mode = (task_directory(node, "job1", "task1") / "wd" / "tool").stat().st_mode
    assert stat.S_IMODE(mode) == 0o755
    assert not mode & (stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX)


def test_setuid_bits_in_a_package_zip_are_dropped(
    node: NodeIdentity, storage: StorageAccess, container: ContainerClient
) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        info = zipfile.ZipInfo("bin/escalate")
        info.external_attr = (stat.S_IFREG | stat.S_ISUID | stat.S_ISGID | 0o755) << 16
        bundle.writestr(info, "#!/bin/sh\nid\n")
    container.upload_blob("pkg.zip", buffer.getvalue())
    package = PackageBlob("tools", "1", container.container_name, "pkg.zip")
    outcome = run(node, {"commandLine": "true"}, storage, packages=(package,))
    assert outcome.result == "success", outcome.failure_info
    extracted = next((node.root / "applications").rglob("escalate"))
    assert not extracted.stat().st_mode & (stat.S_ISUID | stat.S_ISGID)
    assert stat.S_IMODE(extracted.stat().st_mode) & 0o755 == 0o755


def _outputs(azurite: AzuriteEndpoint, container: ContainerClient) -> list[dict[str, Any]]:
    url = container_sas_url(azurite, container.container_name, "rwlc")
    return [
        {
            "filePattern": "out.txt",
            "destination": {"container": {"containerUrl": url, "path": "result.txt"}},
            "uploadOptions": {"uploadCondition": "taskcompletion"},
        }
    ]


def test_an_output_lost_after_its_upload_is_uploaded_again(
    node: NodeIdentity,
    azurite: AzuriteEndpoint,
    container: ContainerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_upload = output_module._upload
    calls: list[str] = []

    def upload_then_lose_the_first(container_url: str, blob_name: str, path: Path, *rest: Any) -> None:
        real_upload(container_url, blob_name, path, *rest)
        calls.append(blob_name)
        if len(calls) == 1:  # storage acknowledged the write, then lost it
            container.delete_blob(blob_name)

    monkeypatch.setattr(output_module, "_upload", upload_then_lose_the_first)
    outcome = run(
        node, {"commandLine": "/bin/sh -c 'echo kept > out.txt'", "outputFiles": _outputs(azurite, container)}
    )
    assert outcome.result == "success", outcome.failure_info
    assert calls == ["result.txt", "result.txt"]
    assert container.download_blob("result.txt").readall() == b"kept\n"
    log = (task_directory(node, "job1", "task1") / "fileuploadout.txt").read_text()
    assert "did not land" in log


def test_an_output_that_never_lands_fails_the_task(
    node: NodeIdentity,
    azurite: AzuriteEndpoint,
    container: ContainerClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    real_upload = output_module._upload

    def upload_and_lose(container_url: str, blob_name: str, path: Path, *rest: Any) -> None:
        real_upload(container_url, blob_name, path, *rest)
        container.delete_blob(blob_name)

    monkeypatch.setattr(output_module, "_upload", upload_and_lose)
    outcome = run(
        node, {"commandLine": "/bin/sh -c 'echo gone > out.txt'", "outputFiles": _outputs(azurite, container)}
    )
    assert outcome.result == "failure"
    assert outcome.failure_info is not None and outcome.failure_info["code"] == "FileUploadMiscError"
