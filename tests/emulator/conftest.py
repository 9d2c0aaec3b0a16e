"""Fixtures for the emulator tests: Azurite per worker, an in-process emulator per module, SDK clients."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest, HttpResponse
from azure.storage.blob import BlobServiceClient

from batchrun.emulator.config import EmulatorConfig, StorageConfig
from batchrun.emulator.server import EmulatorServer
from batchrun.local.azurite import AzuriteEndpoint, start_azurite, stop_process

REPO = Path(__file__).resolve().parents[2]
ACCOUNT = "emuacct"
KEY = base64.b64encode(b"emulator-test-key-0123456789abcdef").decode()
TOKEN = "local-test-token"
# Azurite 3.35 knows storage versions up to this one.
STORAGE_API_VERSION = "2025-11-05"
API = "api-version=2025-06-01"


def tools_dir() -> Path:
    return Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")


def wait_until(condition: Callable[[], Any], timeout: float = 60.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AzuriteEndpoint]:
    data = tmp_path_factory.mktemp("azurite")
    process, endpoint = start_azurite(tools_dir(), data, log_path=data / "azurite.log")
    try:
        yield endpoint
    finally:
        stop_process(process)


@pytest.fixture(scope="session")
def blob_service(azurite: AzuriteEndpoint) -> BlobServiceClient:
    return BlobServiceClient.from_connection_string(
        azurite.connection_string, api_version=STORAGE_API_VERSION
    )


@dataclass
class Emulator:
    server: EmulatorServer
    config: EmulatorConfig

    @property
    def url(self) -> str:
        return self.server.url

    def client(self) -> BatchClient:
        return BatchClient(self.url, AzureNamedKeyCredential(ACCOUNT, KEY))


def emulator_config(state_dir: Path, azurite: AzuriteEndpoint, max_running_tasks: int = 4) -> EmulatorConfig:
    return EmulatorConfig(
        state_dir=state_dir,
        account_name=ACCOUNT,
        account_key=KEY,
        token=TOKEN,
        subscription_id="sub-local",
        resource_group="rg-local",
        storage=StorageConfig(azurite.blob_url, azurite.account_name, azurite.account_key),
        max_running_tasks=max_running_tasks,
    )


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory, azurite: AzuriteEndpoint) -> Iterator[Emulator]:
    config = emulator_config(tmp_path_factory.mktemp("emulator"), azurite)
    server = EmulatorServer(config)
    server.start()
    try:
        yield Emulator(server, config)
    finally:
        server.stop()


@pytest.fixture(scope="module")
def client(emulator: Emulator) -> BatchClient:
    return emulator.client()


def raw(
    client: BatchClient, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    """A signed request through the SDK's pipeline; returns the response whatever its status."""
    separator = "&" if "?" in path else "?"
    if isinstance(body, bytes):
        request = HttpRequest(
            method,
            f"{path}{separator}{API}",
            content=body,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
    else:
        request = HttpRequest(method, f"{path}{separator}{API}", json=body, headers=headers or {})
    try:
        return client.send_request(request)
    except HttpResponseError as error:  # the SDK's policy raises on any non-2xx, even for send_request
        return error.response


def vm() -> dict[str, Any]:
    return {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu", "sku": "24_04"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
    }
