"""Session fixtures shared by every test area: one local target (emulator + Azurite) per pytest worker.

* ``local_target``: a :class:`~batchrun.local.target.LocalTarget` started in a temporary BATCHRUN_HOME
  (Azurite installed once into ``$BATCHRUN_TOOLS_DIR``, default ``<repo>/.cache/tools``), always stopped.
* ``local_target_env``: environment for subprocesses (e.g. the ``batchrun`` CLI) that should use that target.
* ``batch_client`` / ``blob_service``: the real azure-batch and azure-storage-blob clients pointed at it.

The SDKs and the target code are imported only when a test asks for these fixtures.
"""

from __future__ import annotations

import atexit
import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.storage.blob import BlobServiceClient

    from batchrun.local.target import LocalTarget

REPO = Path(__file__).resolve().parents[1]


def tools_dir() -> Path:
    return Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")


@pytest.fixture(scope="session")
def local_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalTarget]:
    from batchrun.local.target import start, stop

    home = tmp_path_factory.mktemp("batchrun-home")
    stopped = False

    def stop_once() -> None:
        nonlocal stopped
        if not stopped:
            stopped = True
            stop(home)

    atexit.register(stop_once)  # also when the session ends before the fixture is finalised
    try:
        yield start(home, tools_dir=tools_dir())
    finally:
        stop_once()
        atexit.unregister(stop_once)


@pytest.fixture(scope="session")
def local_target_env(local_target: LocalTarget) -> dict[str, str]:
    """``os.environ`` for a subprocess that must use ``local_target`` (Azure settings removed)."""
    env = {name: value for name, value in os.environ.items() if not name.startswith("AZURE_")}
    env["BATCHRUN_HOME"] = str(local_target.home)
    env["BATCHRUN_TOOLS_DIR"] = str(tools_dir())
    return env


@pytest.fixture(scope="session")
def batch_client(local_target: LocalTarget) -> Iterator[BatchClient]:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    credential = AzureNamedKeyCredential(local_target.account_name, local_target.account_key)
    with BatchClient(endpoint=local_target.batch_url, credential=credential) as client:
        yield client


@pytest.fixture(scope="session")
def blob_service(local_target: LocalTarget) -> Iterator[BlobServiceClient]:
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(local_target.connection_string) as client:
        yield client
