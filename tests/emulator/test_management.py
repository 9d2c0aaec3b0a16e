"""Application packages through the unmodified azure-mgmt-batch client, then used by a pool and a task."""

from __future__ import annotations

import io
import zipfile
from datetime import datetime, timezone
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.pipeline import PipelineRequest
from azure.core.pipeline.policies import SansIOHTTPPolicy
from azure.mgmt.batch import BatchManagementClient
from azure.mgmt.batch import models as mgmt_models
from azure.storage.blob import BlobClient

from tests.emulator.conftest import ACCOUNT, STORAGE_API_VERSION, TOKEN, Emulator, wait_until

RG = "rg-local"


class LocalToken:
    """A TokenCredential handing out the emulator's local bearer token."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(TOKEN, int(datetime.now(timezone.utc).timestamp()) + 3600)


class AllowBearerOverHttp(SansIOHTTPPolicy):  # type: ignore[type-arg]
    """azure-core refuses bearer tokens on http:// URLs unless the request context opts out."""

    def on_request(self, request: PipelineRequest) -> None:  # type: ignore[type-arg]
        request.context["enforce_https"] = False


@pytest.fixture(scope="module")
def mgmt(emulator: Emulator) -> BatchManagementClient:
    return BatchManagementClient(
        LocalToken(), "sub-local", base_url=emulator.url, per_call_policies=[AllowBearerOverHttp()]
    )


def package_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("tool.sh", '#!/bin/sh\necho tool-v1 "$@"\n')
    return buffer.getvalue()


def test_account_exposes_auto_storage(mgmt: BatchManagementClient) -> None:
    account = mgmt.batch_account.get(RG, ACCOUNT)
    assert account.name == ACCOUNT
    assert account.properties.auto_storage.storage_account_id.endswith("/storageAccounts/devstoreaccount1")
    with pytest.raises(ResourceNotFoundError):
        mgmt.batch_account.get("other-rg", ACCOUNT)


def test_package_flow_and_use_on_pool_and_task(
    emulator: Emulator, mgmt: BatchManagementClient, client: BatchClient
) -> None:
    app = mgmt.application.create(
        RG,
        ACCOUNT,
        "greeter",
        mgmt_models.Application(
            properties=mgmt_models.ApplicationProperties(display_name="Greeter", allow_updates=True)
        ),
    )
    assert app.name == "greeter" and app.properties.allow_updates is True
    version = mgmt.application_package.create(RG, ACCOUNT, "greeter", "1.0")
    assert version.properties.state == mgmt_models.PackageState.PENDING
    with pytest.raises(HttpResponseError):  # nothing uploaded yet
        mgmt.application_package.activate(
            RG, ACCOUNT, "greeter", "1.0", mgmt_models.ActivateApplicationPackageParameters(format="zip")
        )
    BlobClient.from_blob_url(version.properties.storage_url, api_version=STORAGE_API_VERSION).upload_blob(
        package_zip(), overwrite=True
    )
    active = mgmt.application_package.activate(
        RG, ACCOUNT, "greeter", "1.0", mgmt_models.ActivateApplicationPackageParameters(format="zip")
    )
    assert active.properties.state == mgmt_models.PackageState.ACTIVE and active.properties.format == "zip"
    updated = mgmt.application.update(
        RG,
        ACCOUNT,
        "greeter",
        mgmt_models.Application(properties=mgmt_models.ApplicationProperties(default_version="1.0")),
    )
    assert updated.properties.default_version == "1.0"
    assert [item.name for item in mgmt.application.list(RG, ACCOUNT)] == ["greeter"]
    assert [item.name for item in mgmt.application_package.list(RG, ACCOUNT, "greeter")] == ["1.0"]

    listed = list(client.list_applications())
    assert [(item.id, item.versions) for item in listed] == [("greeter", ["1.0"])]
    assert client.get_application("greeter").display_name == "Greeter"

    client.create_pool(
        models.BatchPoolCreateOptions(
            id="app-pool",
            vm_size="standard_d2",
            target_dedicated_nodes=1,
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu", sku="24_04"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
            # Pools reference the full ARM id; no version means the default version.
            application_package_references=[models.BatchApplicationPackageReference(application_id=app.id)],
        )
    )
    client.create_job(
        models.BatchJobCreateOptions(id="app-job", pool_info=models.BatchPoolInfo(pool_id="app-pool"))
    )
    client.create_task(
        "app-job",
        models.BatchTaskCreateOptions(
            id="use-default", command_line="/bin/sh -c 'sh $AZ_BATCH_APP_PACKAGE_greeter/tool.sh pool'"
        ),
    )
    client.create_task(
        "app-job",
        models.BatchTaskCreateOptions(
            id="use-version",
            command_line="/bin/sh -c 'sh $AZ_BATCH_APP_PACKAGE_greeter_1_0/tool.sh task'",
            application_package_references=[
                models.BatchApplicationPackageReference(application_id="greeter", version="1.0")
            ],
        ),
    )
    client.create_task(
        "app-job",
        models.BatchTaskCreateOptions(
            id="missing",
            command_line="/bin/true",
            application_package_references=[
                models.BatchApplicationPackageReference(application_id="greeter", version="9.9")
            ],
        ),
    )
    wait_until(lambda: client.get_job_task_counts("app-job").task_counts.completed == 3, 60, "package tasks")
    out = b"".join(client.download_task_file("app-job", "use-default", "stdout.txt"))
    assert out == b"tool-v1 pool\n"
    out = b"".join(client.download_task_file("app-job", "use-version", "stdout.txt"))
    assert out == b"tool-v1 task\n"
    missing = client.get_task("app-job", "missing").execution_info
    assert missing.result == models.BatchTaskExecutionResult.FAILURE
    assert "9.9" in missing.failure_info.message

    with pytest.raises(HttpResponseError) as raised:  # a pool cannot reference a version that does not exist
        client.create_pool(
            models.BatchPoolCreateOptions(
                id="bad-app-pool",
                vm_size="standard_d2",
                virtual_machine_configuration=models.VirtualMachineConfiguration(
                    image_reference=models.BatchVmImageReference(publisher="c", offer="o", sku="s"),
                    node_agent_sku_id="batch.node.ubuntu 24.04",
                ),
                application_package_references=[
                    models.BatchApplicationPackageReference(application_id="greeter", version="2.0")
                ],
            )
        )
    assert raised.value.status_code == 409
    assert raised.value.error.code == "InvalidApplicationPackageReferences"

    mgmt.application_package.delete(RG, ACCOUNT, "greeter", "1.0")
    assert list(mgmt.application_package.list(RG, ACCOUNT, "greeter")) == []
    mgmt.application.delete(RG, ACCOUNT, "greeter")
    with pytest.raises(ResourceNotFoundError):
        mgmt.application.get(RG, ACCOUNT, "greeter")
