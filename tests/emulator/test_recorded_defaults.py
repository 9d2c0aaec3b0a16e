"""The local target's GET bodies carry what real Azure Batch returns after a create: defaults, casing,
normalised durations, and no write-only fields.

Each test sends the create body of a recorded live session (tests/contract/recordings/, copied from
Azure/azure-sdk-assets ``python/sdk/batch/azure-batch/tests/recordings/``; each file names its source and
commit), reads the resource back, and compares the field under test with what the real service returned.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.rest import HttpRequest

from tests.contract.recordings import FOLDER, Pair, pairs, recording
from tests.emulator.conftest import raw

UNLIMITED = "P10675199DT2H48M5.4775807S"


def recorded(name: str, kind: str, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(create body, GET body) of the ``index``-th pool, job or task pair of a recording."""
    case = recording(name)[kind][index]
    return copy.deepcopy(case.get("desired", case["create"])), case["get"]


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def created(client: BatchClient, path: str, body: dict[str, Any]) -> dict[str, Any]:
    response = raw(client, "POST", path, body)
    assert response.status_code == 201, response.text()
    fetched = raw(client, "GET", f"{path}/{body['id']}")
    assert fetched.status_code == 200, fetched.text()
    result: dict[str, Any] = fetched.json()
    return result


def recorded_pool(client: BatchClient, name: str, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """Create the recorded pool (under a fresh id, with no nodes) and return (local GET, recorded GET)."""
    body, real = recorded(name, "pools", index)
    body["id"] = unique("rec")
    body.pop("targetDedicatedNodes", None)
    return created(client, "/pools", body), real


@pytest.fixture(scope="module")
def idle_pool(client: BatchClient) -> str:
    """A pool with no nodes for the recorded jobs and tasks: they stay as created."""
    body, _ = recorded("create_pools.json", "pools", 1)
    body["id"] = unique("rec-jobs")
    assert raw(client, "POST", "/pools", body).status_code == 201
    return str(body["id"])


# ---- pools


def test_pool_node_fill_type_comes_back_capitalised(client: BatchClient) -> None:
    """create_pools: a pool created without a policy reads back ``Spread``; one created with ``pack``
    reads back ``Pack``."""
    local, real = recorded_pool(client, "create_pools.json", 1)
    assert real["taskSchedulingPolicy"] == {"nodeFillType": "Spread"}
    assert local["taskSchedulingPolicy"] == real["taskSchedulingPolicy"]
    body, real_pack = recorded("create_pools.json", "pools", 0)
    assert body["taskSchedulingPolicy"] == {"nodeFillType": "pack"}
    body = {
        "id": unique("rec-pack"),
        "vmSize": body["vmSize"],
        "virtualMachineConfiguration": recorded("create_pools.json", "pools", 1)[0][
            "virtualMachineConfiguration"
        ],
        "taskSchedulingPolicy": body["taskSchedulingPolicy"],
    }
    assert created(client, "/pools", body)["taskSchedulingPolicy"] == real_pack["taskSchedulingPolicy"]


def test_pool_image_version_defaults_to_latest(client: BatchClient) -> None:
    """create_pools: an imageReference sent without a version reads back ``version: latest``."""
    local, real = recorded_pool(client, "create_pools.json", 1)
    body, _ = recorded("create_pools.json", "pools", 1)
    assert "version" not in body["virtualMachineConfiguration"]["imageReference"]
    assert real["virtualMachineConfiguration"]["imageReference"]["version"] == "latest"
    assert (
        local["virtualMachineConfiguration"]["imageReference"]
        == real["virtualMachineConfiguration"]["imageReference"]
    )


def test_pool_data_disks_get_caching_and_storage_account_type(client: BatchClient) -> None:
    """create_pools (batch_disk): ``caching: none`` and ``storageAccountType: standard_lrs``."""
    local, real = recorded_pool(client, "create_pools.json", 1)
    assert real["virtualMachineConfiguration"]["dataDisks"] == [
        {"lun": 1, "caching": "none", "diskSizeGB": 50, "storageAccountType": "standard_lrs"}
    ]
    disks = local["virtualMachineConfiguration"]["dataDisks"]
    assert disks == real["virtualMachineConfiguration"]["dataDisks"]


def test_pool_user_accounts_get_nonadmin_and_no_password(client: BatchClient) -> None:
    """create_pools (batch_iaas): a user account without elevationLevel reads back ``nonadmin``, a Windows
    pool's accounts get ``windowsUserConfiguration.loginMode: batch``, passwords are never returned."""
    local, real = recorded_pool(client, "create_pools.json", 0)
    assert [account["elevationLevel"] for account in real["userAccounts"]] == ["nonadmin", "admin"]
    assert local["userAccounts"] == real["userAccounts"]
    assert "password" not in str(local)


def test_linux_pool_user_accounts_get_no_windows_configuration(client: BatchClient) -> None:
    """scale_pools: on a Linux pool the account reads back with its elevation level only, no password."""
    body, real = recorded("scale_pools.json", "pools", 1)
    body["id"] = unique("rec-linux-user")
    local = created(client, "/pools", body)
    assert local["userAccounts"] == real["userAccounts"] == [{"name": "task-user", "elevationLevel": "admin"}]


def test_pool_network_configuration_defaults(client: BatchClient) -> None:
    """network_configuration: ``dynamicVNetAssignmentScope: none``, ``enableAcceleratedNetworking: false``,
    and each NSG rule ``sourcePortRanges: ["*"]``."""
    local, real = recorded_pool(client, "network_configuration.json", 0)
    network = real["networkConfiguration"]
    assert network["dynamicVNetAssignmentScope"] == "none"
    assert network["enableAcceleratedNetworking"] is False
    rule = network["endpointConfiguration"]["inboundNATPools"][0]["networkSecurityGroupRules"][0]
    assert rule["sourcePortRanges"] == ["*"]
    assert local["networkConfiguration"] == network


def test_pool_network_configuration_without_rules(client: BatchClient) -> None:
    """scale_pools: a NAT pool without NSG rules reads back with the two network defaults and no rules."""
    body, real = recorded("scale_pools.json", "pools", 1)
    body["id"] = unique("rec-nat")
    assert created(client, "/pools", body)["networkConfiguration"] == real["networkConfiguration"]


def test_pool_patch_fills_the_same_defaults(client: BatchClient) -> None:
    """The defaults of network_configuration and create_pools hold for properties set by PATCH too."""
    body, _ = recorded("create_pools.json", "pools", 2)
    body["id"] = unique("rec-patch")
    created(client, "/pools", body)
    _, network_get = recorded("network_configuration.json", "pools", 0)
    network_body, _ = recorded("network_configuration.json", "pools", 0)
    _, users_get = recorded("create_pools.json", "pools", 0)
    patch = {
        "networkConfiguration": network_body["networkConfiguration"],
        "userAccounts": [{"name": "u1", "password": "Sanitized-Patch-1"}],
    }
    assert raw(client, "PATCH", f"/pools/{body['id']}", patch).status_code == 200
    local = raw(client, "GET", f"/pools/{body['id']}").json()
    assert local["networkConfiguration"] == network_get["networkConfiguration"]
    assert local["userAccounts"] == [{"name": "u1", "elevationLevel": "nonadmin"}]
    assert users_get["userAccounts"][0]["elevationLevel"] == "nonadmin"


def test_container_registry_password_is_never_returned(client: BatchClient) -> None:
    """Write-only like user account passwords (create_pools, scale_pools): a registry password sent on
    create is absent from GET and from the pool list, the rest of the registry is returned."""
    body, _ = recorded("create_pools.json", "pools", 2)
    body["id"] = unique("rec-registry")
    registry = {"registryServer": "rec.azurecr.io", "username": "puller", "password": "Registry-Secret-7"}
    body["virtualMachineConfiguration"]["containerConfiguration"] = {
        "type": "dockerCompatible",
        "containerRegistries": [registry],
    }
    local = created(client, "/pools", body)
    registries = local["virtualMachineConfiguration"]["containerConfiguration"]["containerRegistries"]
    assert registries == [{"registryServer": "rec.azurecr.io", "username": "puller"}]
    listed = raw(client, "GET", f"/pools?$filter=id eq '{body['id']}'").text()
    assert "Registry-Secret-7" not in listed and "rec.azurecr.io" in listed


def test_autoscale_interval_comes_back_normalised(client: BatchClient) -> None:
    """scale_pools: ``autoScaleEvaluationInterval`` sent as ``PT06M00S`` reads back ``PT6M``, whether it
    came with the create or with enableautoscale."""
    body, real = recorded("scale_pools.json", "pools", 0)
    assert body["autoScaleEvaluationInterval"] == "PT06M00S"
    assert real["autoScaleEvaluationInterval"] == "PT6M"
    body["id"] = unique("rec-autoscale")
    body["autoScaleFormula"] = "$TargetDedicatedNodes=0"
    assert created(client, "/pools", body)["autoScaleEvaluationInterval"] == "PT6M"
    fixed, _ = recorded("scale_pools.json", "pools", 1)
    fixed["id"] = unique("rec-enable")
    created(client, "/pools", fixed)
    enable = {"autoScaleFormula": "$TargetDedicatedNodes=0", "autoScaleEvaluationInterval": "PT06M00S"}
    assert raw(client, "POST", f"/pools/{fixed['id']}/enableautoscale", enable).status_code == 200
    assert raw(client, "GET", f"/pools/{fixed['id']}").json()["autoScaleEvaluationInterval"] == "PT6M"


# ---- jobs


def test_job_preparation_and_release_tasks_get_their_defaults(client: BatchClient) -> None:
    """jobs (batch_job1): the preparation task gets its constraints and the default userIdentity, the
    release task ``maxWallClockTime: PT15M``, ``retentionTime: P7D`` and the same userIdentity."""
    body, real = recorded("jobs.json", "jobs", 0)
    body["id"] = unique("rec-job")
    local = created(client, "/jobs", body)
    assert real["jobPreparationTask"]["constraints"] == {
        "maxWallClockTime": UNLIMITED,
        "retentionTime": "P7D",
        "maxTaskRetryCount": 0,
    }
    assert local["jobPreparationTask"] == real["jobPreparationTask"]
    assert real["jobReleaseTask"]["maxWallClockTime"] == "PT15M"
    assert local["jobReleaseTask"] == real["jobReleaseTask"]


def test_job_auto_pool_specification_reads_back_like_a_pool(client: BatchClient) -> None:
    """jobs (batch_job2): the auto pool specification's pool carries the pool defaults (``Spread``)."""
    body, real = recorded("jobs.json", "jobs", 1)
    body["id"] = unique("rec-auto")
    local = created(client, "/jobs", body)
    assert real["poolInfo"]["autoPoolSpecification"]["pool"]["taskSchedulingPolicy"] == {
        "nodeFillType": "Spread"
    }
    assert local["poolInfo"] == real["poolInfo"]


def test_job_constraints_come_back_normalised(client: BatchClient, idle_pool: str) -> None:
    """The rule recorded in scale_pools and job_schedules (``PT06M00S`` -> ``PT6M``, ``PT01H00M00S`` ->
    ``PT1H``) holds for a job's ``constraints.maxWallClockTime``, on create and on PATCH."""
    _, real = recorded("job_schedules.json", "jobs", 1)
    assert real["constraints"]["maxWallClockTime"] == UNLIMITED
    job_id = unique("rec-duration")
    body = {
        "id": job_id,
        "poolInfo": {"poolId": idle_pool},
        "constraints": {"maxWallClockTime": "PT01H00M00S"},
    }
    assert created(client, "/jobs", body)["constraints"] == {
        "maxWallClockTime": "PT1H",
        "maxTaskRetryCount": 0,
    }
    patch = {"constraints": {"maxWallClockTime": "PT90M", "maxTaskRetryCount": 1}}
    assert raw(client, "PATCH", f"/jobs/{job_id}", patch).status_code == 200
    assert raw(client, "GET", f"/jobs/{job_id}").json()["constraints"]["maxWallClockTime"] == "PT1H30M"


def test_schedule_start_window_comes_back_normalised(client: BatchClient, idle_pool: str) -> None:
    """job_schedules: ``startWindow`` sent as ``PT01H00M00S`` reads back ``PT1H``; ``P1D`` stays ``P1D``."""
    durations = {case["name"]: case for case in recording("job_schedules.json")["durations"]}
    body = {
        "id": unique("rec-schedule"),
        "schedule": {
            "startWindow": durations["schedule.startWindow"]["sent"],
            "recurrenceInterval": durations["schedule.recurrenceInterval"]["sent"],
            "doNotRunUntil": "2099-01-01T00:00:00Z",
        },
        "jobSpecification": {"poolInfo": {"poolId": idle_pool}},
    }
    local = created(client, "/jobschedules", body)
    assert local["schedule"]["startWindow"] == durations["schedule.startWindow"]["returned"] == "PT1H"
    assert local["schedule"]["recurrenceInterval"] == durations["schedule.recurrenceInterval"]["returned"]


# ---- tasks


def test_task_gets_the_default_user_identity_and_constraints(client: BatchClient, idle_pool: str) -> None:
    """files: a task added with a command line only reads back with the pool's non-admin auto user and
    its constraints filled in."""
    job_id = unique("rec-tasks")
    created(client, "/jobs", {"id": job_id, "poolInfo": {"poolId": idle_pool}})
    body, real = recorded("files.json", "tasks", 0)
    local = created(client, f"/jobs/{job_id}/tasks", body)
    assert real["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}}
    assert local["userIdentity"] == real["userIdentity"]
    assert local["constraints"] == real["constraints"]
    assert local["requiredSlots"] == real["requiredSlots"]


def test_task_constraints_come_back_normalised(client: BatchClient, idle_pool: str) -> None:
    """The recorded duration rule (scale_pools, job_schedules) on a task's constraints, on add and on PUT;
    an auto user without a scope reads back with the pool scope (files: the default autoUser)."""
    job_id = unique("rec-task-durations")
    created(client, "/jobs", {"id": job_id, "poolInfo": {"poolId": idle_pool}})
    body = {
        "id": "t1",
        "commandLine": "true",
        "constraints": {"maxWallClockTime": "PT02H00M00S", "retentionTime": "PT36H"},
        "userIdentity": {"autoUser": {"elevationLevel": "admin"}},
    }
    local = created(client, f"/jobs/{job_id}/tasks", body)
    assert local["constraints"] == {
        "maxWallClockTime": "PT2H",
        "retentionTime": "P1DT12H",
        "maxTaskRetryCount": 0,
    }
    assert local["userIdentity"] == {"autoUser": {"scope": "pool", "elevationLevel": "admin"}}
    put = {"constraints": {"maxWallClockTime": "PT0H10M0.50S"}}
    assert raw(client, "PUT", f"/jobs/{job_id}/tasks/t1", put).status_code == 200
    after = raw(client, "GET", f"/jobs/{job_id}/tasks/t1").json()
    assert after["constraints"]["maxWallClockTime"] == "PT10M0.5S"


def test_task_registry_password_is_never_returned(client: BatchClient, idle_pool: str) -> None:
    """Write-only like the pool's user account passwords (create_pools, scale_pools): a task's and a job
    preparation task's ``containerSettings.registry.password`` are absent from GET and from the task list."""
    registry = {
        "registryServer": "rec.azurecr.io",
        "username": "puller",
        "password": "Task-Registry-Secret-9",
    }
    settings = {"imageName": "rec.azurecr.io/tool:1", "registry": registry}
    job_id = unique("rec-task-registry")
    job = {
        "id": job_id,
        "poolInfo": {"poolId": idle_pool},
        "jobPreparationTask": {"commandLine": "true", "containerSettings": settings},
    }
    local_job = created(client, "/jobs", job)
    expected = {
        "imageName": "rec.azurecr.io/tool:1",
        "registry": {"registryServer": "rec.azurecr.io", "username": "puller"},
    }
    assert local_job["jobPreparationTask"]["containerSettings"] == expected
    local = created(
        client, f"/jobs/{job_id}/tasks", {"id": "t1", "commandLine": "true", "containerSettings": settings}
    )
    assert local["containerSettings"] == expected
    listed = raw(client, "GET", f"/jobs/{job_id}/tasks").text() + raw(client, "GET", "/jobs").text()
    assert "Task-Registry-Secret-9" not in listed and "rec.azurecr.io" in listed


# ---- every recorded create -> GET pair at once

# What a GET shows that depends on the moment or the scenario rather than on the body sent: computed fields,
# states, node counts (the local pools get no nodes), the autoscale formula (the local one targets 0 nodes).
MOMENT = frozenset(
    {
        "id",
        "url",
        "eTag",
        "lastModified",
        "creationTime",
        "state",
        "stateTransitionTime",
        "previousState",
        "previousStateTransitionTime",
        "allocationState",
        "allocationStateTransitionTime",
        "currentDedicatedNodes",
        "currentLowPriorityNodes",
        "currentNodeCommunicationMode",
        "targetDedicatedNodes",
        "targetLowPriorityNodes",
        "resizeErrors",
        "autoScaleFormula",
        "autoScaleRun",
        "executionInfo",
        "nodeInfo",
        "stats",
        "odata.metadata",
    }
)


def _api_versions() -> dict[str, str]:
    """The api-version each recording was made with, by the source a :class:`Pair` names."""
    versions = {}
    for path in FOLDER.glob("*.json"):
        data = recording(path.name)
        versions[f"{data['repository']}/{data['source']}@{data['commit'][:12]}"] = str(data["apiVersion"])
    return versions


API_VERSIONS = _api_versions()


def get_at(client: BatchClient, path: str, api_version: str) -> dict[str, Any]:
    response = client.send_request(HttpRequest("GET", f"{path}?api-version={api_version}"))
    assert response.status_code == 200, response.text()
    body: dict[str, Any] = response.json()
    return body


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in body.items() if key not in MOMENT}


@pytest.mark.parametrize("pair", [*pairs("pool"), *pairs("job"), *pairs("task")], ids=str)
def test_recorded_pair_reads_back_as_recorded(client: BatchClient, idle_pool: str, pair: Pair) -> None:
    """Every create -> GET pair of the recordings: the local GET, at the recording's api-version, equals the
    real one in everything the body decides."""
    api_version = API_VERSIONS[pair.source]
    body = copy.deepcopy(pair.desired)
    body["id"] = unique("pair")
    real = comparable(pair.get)
    if pair.kind == "pool":
        body.pop("targetDedicatedNodes", None)
        body.pop("targetLowPriorityNodes", None)
        if body.get("enableAutoScale"):
            body["autoScaleFormula"] = "$TargetDedicatedNodes=0"
        assert raw(client, "POST", "/pools", body).status_code == 201
        path = f"/pools/{body['id']}"
    elif pair.kind == "job":
        if "poolId" in body["poolInfo"]:
            body["poolInfo"] = {"poolId": idle_pool}
            real["poolInfo"] = {"poolId": idle_pool}
        assert raw(client, "POST", "/jobs", body).status_code == 201
        path = f"/jobs/{body['id']}"
    else:
        job_id = unique("pair-job")
        assert (
            raw(client, "POST", "/jobs", {"id": job_id, "poolInfo": {"poolId": idle_pool}}).status_code == 201
        )
        assert raw(client, "POST", f"/jobs/{job_id}/tasks", body).status_code == 201
        path = f"/jobs/{job_id}/tasks/{body['id']}"
    assert comparable(get_at(client, path, api_version)) == real
