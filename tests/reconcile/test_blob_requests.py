"""The lock's and the record's blob requests (batchrun/azure/blob_requests.py) against the local target's
Azurite: their errors raise as the SDK's do, with the service's code and message."""

from __future__ import annotations

import base64
from typing import TYPE_CHECKING

import pytest
from azure.core.exceptions import ResourceExistsError, ResourceModifiedError, ResourceNotFoundError
from msgspec.structs import replace

import batchrun
from batchrun.azure import blob_requests as blobs
from batchrun.azure.failures import error_code
from batchrun.errors import AuthenticationError
from tests.reconcile.conftest import make_workload, tasks

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.storage.blob import BlobServiceClient

    from batchrun.target import Target


@pytest.mark.parametrize(
    "account",
    [
        "https://acct.blob.core.windows.net",
        "https://acct.blob.core.windows.net/",
        "http://127.0.0.1:10000/devstoreaccount1",
        "https://acct.blob.core.windows.net/?sv=2024-01-01&sig=abc",
    ],
)
@pytest.mark.parametrize("name", ["w/lock", "a b/results.json.gz", "x~y/ü/lock"])
def test_blob_urls_are_the_sdks(account: str, name: str) -> None:
    from azure.storage.blob import BlobServiceClient

    service = BlobServiceClient(account)
    assert (
        blobs.blob_url(service, "batchrun-state", name) == service.get_blob_client("batchrun-state", name).url
    )
    leased = blobs.blob_url(service, "batchrun-state", name, "comp=lease")
    path, _, query = leased.partition("?")
    assert path == service.get_blob_client("batchrun-state", name).url.split("?")[0]
    assert "comp=lease" in query.split("&") and ("sig=abc" in query) == ("sig=abc" in account)


def test_answers_and_errors_are_the_sdks(blob_service: BlobServiceClient) -> None:
    container, name = "batchrun-requests", "w/lock"
    with pytest.raises(ResourceNotFoundError) as missing:
        blobs.create_empty_blob(blob_service, container, name, {"host": "h"})
    assert error_code(missing.value) == "ContainerNotFound"
    blob_service.create_container(container)

    etag = blobs.create_empty_blob(blob_service, container, name, {"host": "h", "pid": "1"})
    assert etag == blob_service.get_blob_client(container, name).get_blob_properties().etag
    with pytest.raises(ResourceExistsError) as there:
        blobs.create_empty_blob(blob_service, container, name, {})
    assert error_code(there.value) == "BlobAlreadyExists"
    assert str(there.value.message).startswith("The specified blob already exists")
    assert blobs.blob_metadata(blob_service, container, name) == {"host": "h", "pid": "1"}
    assert blobs.download_blob(blob_service, container, name) == (b"", etag)

    with pytest.raises(ResourceModifiedError):
        blobs.lease(
            blob_service,
            container,
            name,
            "acquire",
            "00000000-0000-0000-0000-000000000003",
            seconds=15,
            if_match='"0x1"',
        )
    lease = "00000000-0000-0000-0000-000000000001"
    blobs.lease(blob_service, container, name, "acquire", lease, seconds=15, if_match=etag)
    with pytest.raises(ResourceExistsError) as leased:
        blobs.lease(
            blob_service, container, name, "acquire", "00000000-0000-0000-0000-000000000002", seconds=15
        )
    assert error_code(leased.value) == "LeaseAlreadyPresent"
    blobs.set_blob_metadata(blob_service, container, name, {"host": "other"}, lease)
    assert blobs.blob_metadata(blob_service, container, name) == {"host": "other"}
    blobs.lease(blob_service, container, name, "renew", lease)
    blobs.lease(blob_service, container, name, "release", lease)
    blobs.lease(blob_service, container, name, "acquire", lease, seconds=15)
    blobs.lease(blob_service, container, name, "break")
    blobs.lease(blob_service, container, name, "acquire", lease, seconds=15)
    blobs.delete_blob(blob_service, container, name, lease)
    with pytest.raises(ResourceNotFoundError) as gone:
        blobs.blob_metadata(blob_service, container, name)  # a HEAD: no body, the code from the header
    assert error_code(gone.value) == "BlobNotFound"
    blob_service.delete_container(container)


def test_a_wrong_storage_key_is_named_with_the_services_message_and_no_key(
    target: Target, batch_client: BatchClient
) -> None:
    wrong = base64.b64encode(b"not the account key").decode()
    workload = make_workload("wrong-storage-key", tasks(1))
    with pytest.raises(AuthenticationError) as refused:
        batchrun.apply(workload, target=replace(target, storage_key=wrong))
    message = str(refused.value)
    assert "reading the record of results of workload 'wrong-storage-key'" in message, message
    assert "rejected batchrun's credentials" in message and "Server failed to authenticate" in message
    assert wrong not in message and (target.storage_key or "") not in message
    with pytest.raises(ResourceNotFoundError):  # nothing was written
        batch_client.get_pool("wrong-storage-key-pool")
