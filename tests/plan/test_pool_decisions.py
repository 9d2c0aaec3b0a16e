"""Pool decisions as data cases: (desired body, live pool) -> expected action and operations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest
from msgspec.structs import replace

from batchrun.model import PoolSpec
from batchrun.plan.actions import Action, Change, Plan
from batchrun.plan.bodies import Ownership, metadata_list, pool_body
from batchrun.plan.decide_common import PlanOptions
from batchrun.plan.decide_pool import decide_pool
from batchrun.plan.live import LivePool
from batchrun.plan.render import render_json, render_text
from batchrun.plan.secrets import SECRET_KEYS

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


# -- write-only fields, removed keys, keys set by others, empty-pool updates -------------------------------

SALTED = Ownership("demo", "d1", "abc123", salt="0123456789abcdef0123456789abcdef")
USERS = [{"name": "batchuser", "password": "Old-Pa55", "elevationLevel": "admin"}]


def body_of(**properties: Any) -> dict[str, Any]:
    spec = {
        "vmSize": "standard_d2s_v3",
        "virtualMachineConfiguration": IMAGE,
        "targetDedicatedNodes": 0,
        **properties,
    }
    return pool_body(PoolSpec("p1", spec), SALTED)


def applied_pool(applied: dict[str, Any], nodes: int = 0, **live: Any) -> LivePool:
    """A live pool batchrun created from ``applied`` (its marks recorded), as the service returns it:
    write-only fields left out, defaults filled in, then ``live`` on top."""
    properties = {
        **mask_free(applied),
        "resizeTimeout": "PT15M",
        "taskSlotsPerNode": 1,
        "taskSchedulingPolicy": {"nodeFillType": "Spread"},
        "currentDedicatedNodes": nodes,
        "currentLowPriorityNodes": 0,
        "allocationState": "steady",
        **live,
    }
    metadata = {i["name"]: i["value"] for i in properties["metadata"]}
    return LivePool("p1", properties, metadata, "active", "steady", running_nodes=0)


def mask_free(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: mask_free(v) for k, v in value.items() if k not in SECRET_KEYS}
    if isinstance(value, list):
        return [mask_free(v) for v in value]
    return value


def decide(desired_body: dict[str, Any], live: LivePool) -> Change:
    return decide_pool(desired_body, live, SALTED, PlanOptions())


def test_a_password_missing_from_the_get_is_not_drift() -> None:
    body = body_of(userAccounts=USERS)
    assert decide(body, applied_pool(body)).action is Action.NOOP


def test_a_changed_password_is_one_masked_in_place_change_on_an_empty_pool() -> None:
    live = applied_pool(body_of(userAccounts=USERS))
    new = body_of(userAccounts=[{**USERS[0], "password": "New-Pa55"}])
    change = decide(new, live)
    assert change.action is Action.UPDATE
    assert [op.name for op in change.operations] == ["pool.patch"]
    assert [(f.path, f.before, f.after) for f in change.fields] == [
        ("userAccounts[0].password", "(sensitive)", "(sensitive), changed")
    ]
    assert "New-Pa55" not in render_text(plan_with(change)) and "Old-Pa55" not in render_text(
        plan_with(change)
    )
    assert "New-Pa55" not in render_json(plan_with(change))
    patch = change.operations[0].args["body"]
    assert patch["userAccounts"][0]["password"] == "New-Pa55"  # what apply sends
    assert any(i["name"] == "batchrun.secrets" for i in patch["metadata"])


def test_a_changed_password_on_a_pool_with_nodes_replaces_it() -> None:
    live = applied_pool(body_of(userAccounts=USERS), nodes=1)
    change = decide(body_of(userAccounts=[{**USERS[0], "password": "New-Pa55"}]), live)
    assert change.action is Action.REPLACE
    assert [f.path for f in change.fields if f.forces_replacement] == ["userAccounts[0].password"]


def test_a_password_batchrun_never_recorded_is_applied_once() -> None:
    body = body_of(userAccounts=USERS)
    live = applied_pool(body)
    unrecorded = replace(live, metadata={k: v for k, v in live.metadata.items() if k != "batchrun.secrets"})
    change = decide(body, unrecorded)
    assert change.action is Action.UPDATE
    assert [(f.path, f.before) for f in change.fields] == [("userAccounts[0].password", "(not recorded)")]


def test_removed_start_task_is_removed_through_updateproperties() -> None:
    live = applied_pool(body_of(startTask={"commandLine": "echo ready"}))
    change = decide(body_of(), live)
    assert change.action is Action.UPDATE
    assert [op.name for op in change.operations] == ["pool.replace_properties"]
    sent = change.operations[0].args["body"]
    assert "startTask" not in sent and sent["applicationPackageReferences"] == []
    assert [(f.path, f.after) for f in change.fields] == [("startTask", "(removed)")]


def test_removed_package_references_are_cleared_with_patch() -> None:
    refs = [{"applicationId": "tools", "version": "1"}]
    change = decide(body_of(), applied_pool(body_of(applicationPackageReferences=refs)))
    assert [op.name for op in change.operations] == ["pool.patch"]
    assert change.operations[0].args["body"]["applicationPackageReferences"] == []


def test_removed_user_accounts_empty_pool_patch_else_replace() -> None:
    with_users = body_of(userAccounts=USERS)
    empty = decide(body_of(), applied_pool(with_users))
    assert [op.name for op in empty.operations] == ["pool.patch"]
    assert empty.operations[0].args["body"]["userAccounts"] == []
    busy = decide(body_of(), applied_pool(with_users, nodes=2))
    assert busy.action is Action.REPLACE and [f.path for f in busy.fields] == ["userAccounts"]


def test_empty_pool_only_properties_change_in_place_while_the_pool_is_empty() -> None:
    live = applied_pool(body_of())
    change = decide(body_of(vmSize="standard_d4s_v3", taskSlotsPerNode=4), live)
    assert change.action is Action.UPDATE
    assert set(change.operations[0].args["body"]) == {"vmSize", "taskSlotsPerNode", "metadata"}
    resizing = replace(live, allocation_state="resizing")
    assert decide(body_of(vmSize="standard_d4s_v3"), resizing).action is Action.REPLACE


def test_properties_and_metadata_set_by_someone_else_are_kept() -> None:
    live = applied_pool(body_of(), displayName="set in the portal")
    live = replace(
        live,
        metadata={**live.metadata, "costcentre": "42"},
        properties={
            **live.properties,
            "metadata": [*live.properties["metadata"], {"name": "costcentre", "value": "42"}],
        },
    )
    assert decide(body_of(), live).action is Action.NOOP
    change = decide(body_of(startTask={"commandLine": "echo v2"}), live)
    assert change.action is Action.UPDATE
    patch = change.operations[0].args["body"]
    assert "displayName" not in patch
    assert {"name": "costcentre", "value": "42"} in patch["metadata"]
    kept = {f.path: f.after for f in change.fields}
    assert "kept" in str(kept["displayName"]) and "kept" in str(kept["metadata.costcentre"])


def test_without_a_record_nothing_is_reverted() -> None:
    """An adopted pool (or one written by an older batchrun): what the manifest does not set is kept."""
    live = applied_pool(body_of(startTask={"commandLine": "echo theirs"}))
    legacy = replace(live, metadata={k: v for k, v in live.metadata.items() if k != "batchrun.keys"})
    assert decide(body_of(), legacy).action is Action.NOOP


def test_removed_metadata_item_is_reverted_and_casing_is_no_drift() -> None:
    body = body_of(metadata=[{"name": "team", "value": "viz"}], taskSchedulingPolicy={"nodeFillType": "pack"})
    live = applied_pool(body, taskSchedulingPolicy={"nodeFillType": "Pack"})
    assert decide(body, live).action is Action.NOOP
    change = decide(body_of(taskSchedulingPolicy={"nodeFillType": "pack"}), live)
    assert [(f.path, f.after) for f in change.fields] == [("metadata.team", "(removed)")]
    assert not any(i["name"] == "team" for i in change.operations[0].args["body"]["metadata"])


def plan_with(change: Change) -> Plan:
    return Plan(workload="demo", target="local", changes=(change,))


def test_the_secrets_record_is_stable_per_resource_and_differs_between_resources() -> None:
    """A plan made twice holds the same bodies (saved plans compare equal); equal passwords on two pools do
    not give equal digests."""
    owner = Ownership("demo", "d1", "")
    spec = {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE, "userAccounts": USERS}
    first, again = pool_body(PoolSpec("p1", spec), owner), pool_body(PoolSpec("p1", spec), owner)
    other = pool_body(PoolSpec("p2", spec), owner)

    def record(body: dict[str, Any]) -> str:
        return next(i["value"] for i in body["metadata"] if i["name"] == "batchrun.secrets")

    assert record(first) == record(again) != record(other)
    assert "Old-Pa55" not in record(first)


def test_adopting_shows_what_someone_else_set_and_keeps_it() -> None:
    theirs = {
        "id": "p1",
        "vmSize": "STANDARD_D2S_V3",
        "virtualMachineConfiguration": {**IMAGE},
        "displayName": "made by hand",
        "startTask": {"commandLine": "echo theirs"},
        "metadata": [{"name": "costcentre", "value": "42"}],
        "currentDedicatedNodes": 0,
        "allocationState": "steady",
    }
    live = LivePool("p1", theirs, {"costcentre": "42"}, "active", "steady")
    change = decide_pool(body_of(), live, SALTED, PlanOptions(adopt=True))
    assert change.action is Action.UPDATE and change.reason == "adopted"
    shown = {f.path: f.after for f in change.fields}
    assert shown["displayName"] == shown["startTask"] == "(kept: not set by batchrun)"
    assert "kept" in shown["metadata.costcentre"]
    (patch,) = [op.args["body"] for op in change.operations]
    assert set(patch) == {"metadata"}  # nothing of theirs is reverted or wiped
    assert {"name": "costcentre", "value": "42"} in patch["metadata"]


def test_updateproperties_keeps_the_node_communication_mode() -> None:
    """POST updateproperties resets an omitted targetNodeCommunicationMode to default: it is sent again."""
    live = applied_pool(body_of(startTask={"commandLine": "x"}, targetNodeCommunicationMode="classic"))
    change = decide(body_of(targetNodeCommunicationMode="classic"), live)
    (replacement,) = [op.args["body"] for op in change.operations if op.name == "pool.replace_properties"]
    assert replacement["targetNodeCommunicationMode"] == "classic" and "startTask" not in replacement
