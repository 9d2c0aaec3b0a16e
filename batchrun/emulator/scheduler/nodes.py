"""Compute node records: creation, removal bookkeeping and the identity the node runtime needs."""

from __future__ import annotations

import zlib
from datetime import datetime, timezone

from batchrun.emulator.config import EmulatorConfig
from batchrun.emulator.model import Body, internal, transition
from batchrun.emulator.node import NodeIdentity, node_root
from batchrun.emulator.timefmt import now_iso

SCHEDULABLE = ("idle", "running")
BOOTING = ("creating", "starting", "waitingforstarttask")
# Preferred order for removal when a pool shrinks: nodes doing nothing useful go first.
REMOVAL_ORDER = {
    "unusable": 0,
    "starttaskfailed": 1,
    "creating": 2,
    "starting": 3,
    "waitingforstarttask": 4,
    "idle": 5,
    "running": 6,
}


def new_node(pool: Body, dedicated: bool) -> Body:
    extra = internal(pool)
    number = int(extra.get("nodeCounter", 0)) + 1
    extra["nodeCounter"] = number
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dt%H%M%Sz")
    node_id = f"tvm-{zlib.crc32(pool['id'].encode()) % 10**10}_{number}-{stamp}"
    moment = now_iso()
    node: Body = {
        "id": node_id,
        "state": "creating",
        "schedulingState": "enabled",
        "stateTransitionTime": moment,
        "allocationTime": moment,
        "ipAddress": "127.0.0.1",
        "affinityId": f"TVM:{node_id}",
        "vmSize": pool.get("vmSize", ""),
        "totalTasksRun": 0,
        "totalTasksSucceeded": 0,
        "runningTasksCount": 0,
        "runningTaskSlotsCount": 0,
        "isDedicated": dedicated,
        "nodeAgentInfo": {"version": "1.2.0.0", "lastUpdateTime": moment},
        "_x": {"jobPrep": {}},
    }
    if pool.get("startTask"):
        node["startTask"] = pool["startTask"]
    if pool.get("virtualMachineConfiguration", {}).get("imageReference"):
        node["virtualMachineInfo"] = {"imageReference": pool["virtualMachineConfiguration"]["imageReference"]}
    return node


def set_node_state(node: Body, state: str) -> None:
    previous = node.get("state")
    transition(node, state)
    # Nodes have no previousState fields in Batch's model.
    node.pop("previousState", None)
    node.pop("previousStateTransitionTime", None)
    if previous in BOOTING and state not in BOOTING and "lastBootTime" not in node:
        node["lastBootTime"] = node["stateTransitionTime"]


def identity(config: EmulatorConfig, account_url: str, pool_id: str, node: Body) -> NodeIdentity:
    return NodeIdentity(
        root=node_root(config.nodes_dir, pool_id, node["id"]),
        account_name=config.account_name,
        account_url=account_url,
        pool_id=pool_id,
        node_id=node["id"],
        is_dedicated=bool(node.get("isDedicated", True)),
    )


def is_windows(pool: Body) -> bool:
    sku = str(pool.get("virtualMachineConfiguration", {}).get("nodeAgentSKUId", ""))
    return "windows" in sku.lower()
