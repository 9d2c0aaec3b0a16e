"""What the recordings do not show but the Batch REST reference (api-version 2025-06-01) documents.

Each case is a body batchrun would send and the GET the reference says comes back: defaults the service
fills in, and write-only fields it leaves out. Normalised, the two are equal; the pool decision is a no-op.
"""

from __future__ import annotations

from typing import Any

import pytest

from batchrun.model import PoolSpec
from batchrun.plan.actions import Action
from batchrun.plan.bodies import Ownership, pool_body
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.decide_pool import decide_pool
from batchrun.plan.defaults import normalise
from batchrun.plan.diff import diff_subset
from batchrun.plan.live import LivePool
from batchrun.plan.secrets import SECRET_KEYS

OWNER = Ownership("documented", "d", "", salt="ffeeddccbbaa99887766554433221100")
IMAGE = {
    "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts", "sku": "server"},
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}
SERVICE_POOL = {
    "state": "active",
    "allocationState": "steady",
    "resizeTimeout": "PT15M",
    "currentDedicatedNodes": 0,
    "targetDedicatedNodes": 0,
    "targetLowPriorityNodes": 0,
    "enableAutoScale": False,
    "enableInterNodeCommunication": False,
    "taskSlotsPerNode": 1,
    "taskSchedulingPolicy": {"nodeFillType": "Spread"},
    "certificateReferences": [],
}

POOL_CASES: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    (
        "start task defaults (REST BatchStartTask: maxTaskRetryCount 0, waitForSuccess true, auto user)",
        {"startTask": {"commandLine": "/bin/true"}},
        {
            "startTask": {
                "commandLine": "/bin/true",
                "maxTaskRetryCount": 0,
                "waitForSuccess": True,
                "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
            }
        },
    ),
    (
        "node placement (REST BatchNodePlacementConfiguration: regional when not specified)",
        {},
        {"virtualMachineConfiguration": {**IMAGE, "nodePlacementConfiguration": {"policy": "regional"}}},
    ),
    (
        "blob mount account key and SAS key are write-only (REST AzureBlobFileSystemConfiguration)",
        {
            "mountConfiguration": [
                {
                    "azureBlobFileSystemConfiguration": {
                        "accountName": "acct",
                        "containerName": "data",
                        "accountKey": "a2V5LXZhbHVl",
                        "relativeMountPath": "data",
                    }
                }
            ]
        },
        {
            "mountConfiguration": [
                {
                    "azureBlobFileSystemConfiguration": {
                        "accountName": "acct",
                        "containerName": "data",
                        "relativeMountPath": "data",
                    }
                }
            ]
        },
    ),
    (
        "CIFS password and Linux ssh private key are write-only (REST CifsMountConfiguration, "
        "LinuxUserConfiguration)",
        {
            "mountConfiguration": [
                {
                    "cifsMountConfiguration": {
                        "username": "u",
                        "source": "//server/share",
                        "relativeMountPath": "share",
                        "password": "cifs-secret",
                    }
                }
            ],
            "userAccounts": [
                {
                    "name": "ops",
                    "password": "pw",
                    "linuxUserConfiguration": {"uid": 1001, "sshPrivateKey": "KEY"},
                }
            ],
        },
        {
            "mountConfiguration": [
                {
                    "cifsMountConfiguration": {
                        "username": "u",
                        "source": "//server/share",
                        "relativeMountPath": "share",
                    }
                }
            ],
            "userAccounts": [
                {"name": "ops", "elevationLevel": "nonadmin", "linuxUserConfiguration": {"uid": 1001}}
            ],
        },
    ),
    (
        "autoscale evaluation interval (REST BatchPoolCreateOptions: 15 minutes by default)",
        {"enableAutoScale": True, "autoScaleFormula": "$TargetDedicatedNodes=0;"},
        {
            "enableAutoScale": True,
            "autoScaleFormula": "$TargetDedicatedNodes=0;",
            "autoScaleEvaluationInterval": "PT15M",
        },
    ),
]


@pytest.mark.parametrize(("name", "sent", "returned"), POOL_CASES, ids=[c[0] for c in POOL_CASES])
def test_documented_pool_defaults_are_no_drift(
    name: str, sent: dict[str, Any], returned: dict[str, Any]
) -> None:
    properties = {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE, **sent}
    body = pool_body(PoolSpec("doc-pool", properties), OWNER)
    get = {
        "id": "doc-pool",
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": {
            **IMAGE,
            "imageReference": {**IMAGE["imageReference"], "version": "latest"},
        },
        **SERVICE_POOL,
        **returned,
        "metadata": body["metadata"],
    }
    if "virtualMachineConfiguration" in returned:
        get["virtualMachineConfiguration"]["imageReference"]["version"] = "latest"
    assert normalise("pool", {k: v for k, v in body.items() if k != "metadata"}, SECRET_KEYS) == normalise(
        "pool", {k: v for k, v in get.items() if k != "metadata"}, SECRET_KEYS
    )
    live = LivePool("doc-pool", get, {i["name"]: i["value"] for i in body["metadata"]}, "active", "steady")
    assert decide_pool(body, live, OWNER, PlanOptions()).action is Action.NOOP


def test_a_task_registry_password_is_write_only() -> None:
    """REST ContainerRegistryReference.password on a task's containerSettings: not returned."""
    sent = {
        "id": "t",
        "commandLine": "/bin/true",
        "containerSettings": {
            "imageName": "app:1",
            "registry": {"registryServer": "r.azurecr.io", "username": "u", "password": "registry-secret"},
        },
    }
    returned = {
        **sent,
        "containerSettings": {
            "imageName": "app:1",
            "registry": {"registryServer": "r.azurecr.io", "username": "u"},
        },
        "requiredSlots": 1,
    }
    assert normalise("task", sent, SECRET_KEYS) == normalise("task", returned, SECRET_KEYS)
    assert diff_subset(sent, returned) == []


def test_job_manager_defaults_are_no_drift() -> None:
    """REST BatchJobManagerTask: killJobOnCompletion and runExclusive true, requiredSlots 1."""
    sent = {
        "id": "j",
        "poolInfo": {"poolId": "p"},
        "jobManagerTask": {"id": "jm", "commandLine": "/bin/true"},
    }
    returned = {
        **sent,
        "jobManagerTask": {
            "id": "jm",
            "commandLine": "/bin/true",
            "killJobOnCompletion": True,
            "runExclusive": True,
            "requiredSlots": 1,
            "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
        },
        "priority": 0,
    }
    assert normalise("job", sent) == normalise("job", returned)
