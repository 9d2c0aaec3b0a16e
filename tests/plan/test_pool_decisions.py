"""Pool decisions as data cases: (desired body, live pool) -> expected action and operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from batchrun.plan.actions import Action
from batchrun.plan.bodies import Ownership, metadata_list
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.decide_pool import decide_pool
from batchrun.plan.live import LivePool

OWNER = Ownership("demo", "d1", "abc123")
IMAGE = {
    "imageReference": {
        "publisher": "canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "version": "latest",
    },
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}


def desired(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": "p1",
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": IMAGE,
        "targetDedicatedNodes": 1,
        "startTask": {"commandLine": "echo ready", "waitForSuccess": True},
    }
    body.update(overrides)
    body["metadata"] = metadata_list([], OWNER)
    return body


def live_properties(**overrides: Any) -> dict[str, Any]:
    """What the service returns for the desired pool: defaults and computed fields included."""
    props: dict[str, Any] = {
        "id": "p1",
        "url": "http://127.0.0.1/pools/p1",
        "eTag": "0x1",
        "creationTime": "2026-11-21T10:00:00Z",
        "state": "active",
        "allocationState": "steady",
        "vmSize": "STANDARD_D2S_V3",  # service case differs
        "virtualMachineConfiguration": {**IMAGE, "nodePlacementConfiguration": {"policy": "regional"}},
        "resizeTimeout": "PT15M",
        "currentDedicatedNodes": 1,
        "currentLowPriorityNodes": 0,
        "targetDedicatedNodes": 1,
        "targetLowPriorityNodes": 0,
        "enableAutoScale": False,
        "enableInterNodeCommunication": False,
        "taskSlotsPerNode": 1,
        "taskSchedulingPolicy": {"nodeFillType": "Spread"},
        "startTask": {
            "commandLine": "echo ready",
            "waitForSuccess": True,
            "maxTaskRetryCount": 0,
            "userIdentity": {"autoUser": {"scope": "pool", "elevationLevel": "nonadmin"}},
        },
    }
    props.update(overrides)
    return props


@dataclass
class Case:
    name: str
    body: dict[str, Any]
    live: LivePool | None
    action: Action
    operations: list[str] = field(default_factory=list)
    options: PlanOptions = field(default_factory=PlanOptions)
    forced: list[str] = field(default_factory=list)


def pool(props: dict[str, Any] | None = None, owner: str | None = "demo", **kwargs: Any) -> LivePool:
    properties = props or live_properties()
    metadata = {"batchrun.workload": owner, "batchrun.digest": "old"} if owner else {}
    return LivePool(
        id="p1",
        properties=properties,
        metadata=metadata,
        state=kwargs.get("state", "active"),
        allocation_state=properties.get("allocationState", "steady"),
        running_nodes=kwargs.get("running_nodes", 0),
    )


CASES = [
    Case("absent -> create", desired(), None, Action.CREATE, ["pool.create"]),
    Case(
        "being deleted -> wait, create",
        desired(),
        pool(state="deleting"),
        Action.CREATE,
        ["pool.wait_deleted", "pool.create"],
    ),
    Case("live defaults and case are not drift", desired(), pool(), Action.NOOP),
    Case("digest/revision differences alone are not drift", desired(), pool(), Action.NOOP),
    Case("durations compare by length", desired(resizeTimeout="PT15M00S"), pool(), Action.NOOP),
    Case(
        "default written explicitly is not drift",
        desired(taskSlotsPerNode=1, enableInterNodeCommunication=False),
        pool(live_properties(taskSlotsPerNode=None, enableInterNodeCommunication=None)),
        Action.NOOP,
    ),
    Case(
        "startTask change -> PATCH",
        desired(startTask={"commandLine": "echo v2", "waitForSuccess": True}),
        pool(),
        Action.UPDATE,
        ["pool.patch"],
    ),
    Case(
        "package references -> PATCH",
        desired(applicationPackageReferences=[{"applicationId": "tools", "version": "2"}]),
        pool(),
        Action.UPDATE,
        ["pool.patch"],
    ),
    Case(
        "user metadata -> PATCH",
        {**desired(), "metadata": [{"name": "team", "value": "viz"}, *metadata_list([], OWNER)]},
        pool(),
        Action.UPDATE,
        ["pool.patch"],
    ),
    Case("node count -> resize", desired(targetDedicatedNodes=3), pool(), Action.UPDATE, ["pool.resize"]),
    Case(
        "resize during resize -> stop first, then resize",
        desired(targetDedicatedNodes=3),
        pool(live_properties(allocationState="resizing", targetDedicatedNodes=2)),
        Action.UPDATE,
        ["pool.stop_resize", "pool.resize"],
    ),
    Case(
        "resizing towards the desired size -> no-op",
        desired(targetDedicatedNodes=2),
        pool(live_properties(allocationState="resizing", targetDedicatedNodes=2)),
        Action.NOOP,
    ),
    Case("resizeTimeout alone is no reason to resize", desired(resizeTimeout="PT30M"), pool(), Action.NOOP),
    Case(
        "fixed -> autoscale",
        {**desired(), "enableAutoScale": True, "autoScaleFormula": "$TargetDedicatedNodes=2;"},
        pool(),
        Action.UPDATE,
        ["pool.enable_autoscale"],
    ),
    Case(
        "autoscale -> fixed: disable, then resize",
        desired(targetDedicatedNodes=2),
        pool(live_properties(enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes=1;")),
        Action.UPDATE,
        ["pool.disable_autoscale", "pool.resize"],
    ),
    Case(
        "autoscale formula change -> enable again",
        {**desired(), "enableAutoScale": True, "autoScaleFormula": "$TargetDedicatedNodes=4;"},
        pool(live_properties(enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes=2;")),
        Action.UPDATE,
        ["pool.enable_autoscale"],
    ),
    Case(
        "same autoscale formula -> no-op",
        {**desired(), "enableAutoScale": True, "autoScaleFormula": "$TargetDedicatedNodes=2;"},
        pool(live_properties(enableAutoScale=True, autoScaleFormula="$TargetDedicatedNodes=2;")),
        Action.NOOP,
    ),
    Case(
        "vmSize -> replace",
        desired(vmSize="standard_d4s_v3"),
        pool(),
        Action.REPLACE,
        ["pool.delete", "pool.create"],
        forced=["vmSize"],
    ),
    Case(
        "image -> replace",
        desired(virtualMachineConfiguration={**IMAGE, "nodeAgentSKUId": "batch.node.ubuntu 22.04"}),
        pool(),
        Action.REPLACE,
        ["pool.delete", "pool.create"],
        forced=["virtualMachineConfiguration.nodeAgentSKUId"],
    ),
    Case(
        "replace with running tasks -> blocked",
        desired(vmSize="standard_d4s_v3"),
        pool(running_nodes=1),
        Action.BLOCKED,
        forced=["vmSize"],
    ),
    Case(
        "replace with running tasks, confirmed -> replace",
        desired(vmSize="standard_d4s_v3"),
        pool(running_nodes=1),
        Action.REPLACE,
        ["pool.delete", "pool.create"],
        options=PlanOptions(confirm_replace=True),
        forced=["vmSize"],
    ),
    Case("unowned -> blocked", desired(), pool(owner=None), Action.BLOCKED),
    Case("owned by another workload -> blocked", desired(), pool(owner="other"), Action.BLOCKED),
    Case(
        "unowned with --adopt -> update marks",
        desired(),
        pool(owner=None),
        Action.UPDATE,
        ["pool.patch"],
        options=PlanOptions(adopt=True),
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_pool_decision(case: Case) -> None:
    change = decide_pool(case.body, case.live, OWNER, case.options)
    assert change.action is case.action, change
    assert [op.name for op in change.operations] == case.operations
    assert [f.path for f in change.fields if f.forces_replacement] == case.forced
    if case.action is Action.BLOCKED:
        assert change.unblock


def test_blocked_names_the_flag() -> None:
    unowned = decide_pool(desired(), pool(owner=None), OWNER, PlanOptions())
    assert "--adopt" in unowned.unblock
    busy = decide_pool(desired(vmSize="standard_d4s_v3"), pool(running_nodes=2), OWNER, PlanOptions())
    assert "--confirm-replace" in busy.unblock
    assert "2 node(s)" in busy.reason


def test_patch_body_carries_only_changed_families_and_metadata() -> None:
    change = decide_pool(desired(startTask={"commandLine": "echo v2"}), pool(), OWNER, PlanOptions())
    patch = change.operations[0].args["body"]
    assert set(patch) == {"startTask", "metadata"}
    assert {"name": "batchrun.workload", "value": "demo"} in patch["metadata"]
