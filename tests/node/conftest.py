"""Node runtime test fixtures: a real Azurite per session (per xdist worker) and a fresh node."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from batchrun.emulator.node import (
    NodeIdentity,
    PackageBlob,
    StorageAccess,
    TaskLaunch,
    TaskOutcome,
    prepare_node,
    run_task,
)
from batchrun.local.azurite import AzuriteEndpoint, start_azurite, stop_process

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteEndpoint]:
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR", REPO / ".cache" / "tools"))
    data = tmp_path_factory.mktemp("azurite")
    process, endpoint = start_azurite(tools, data, log_path=data / "azurite.log")
    try:
        yield endpoint
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def storage(azurite: AzuriteEndpoint) -> StorageAccess:
    return StorageAccess(azurite.blob_url, azurite.account_name, azurite.account_key)


@pytest.fixture(scope="session")
def node_blobs(azurite: AzuriteEndpoint) -> Iterator[BlobServiceClient]:
    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        yield client


@pytest.fixture
def node(tmp_path: Path) -> NodeIdentity:
    identity = NodeIdentity(
        root=tmp_path / "nodes" / "pool1" / "tvm-1",
        account_name="local",
        account_url="http://127.0.0.1:1",
        pool_id="pool1",
        node_id="tvm-1",
        is_dedicated=True,
    )
    prepare_node(identity)
    return identity


def container_sas_url(azurite: AzuriteEndpoint, container: str, permission: str) -> str:
    token = generate_container_sas(
        azurite.account_name,
        container,
        account_key=azurite.account_key,
        permission=ContainerSasPermissions.from_string(permission),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    return f"{azurite.blob_url}/{container}?{token}"


def run(
    node: NodeIdentity,
    spec: Mapping[str, Any],
    storage: StorageAccess | None = None,
    *,
    kind: str = "task",
    job_id: str = "job1",
    task_id: str = "task1",
    job_environment: Any = (),
    packages: tuple[PackageBlob, ...] = (),
    cancel: threading.Event | None = None,
) -> TaskOutcome:
    launch = TaskLaunch(kind, job_id, task_id, spec, job_environment, packages)  # type: ignore[arg-type]
    return run_task(node, launch, storage, cancel or threading.Event())
