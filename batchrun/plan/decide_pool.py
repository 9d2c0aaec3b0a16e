"""Decisions for the pool (pure): create; PATCH, resize or autoscale in place; replace; or blocked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchrun.plan.actions import Action, Change, FieldChange, Operation, Stage
from batchrun.plan.bodies import Ownership
from batchrun.plan.decide_common import (
    PlanOptions,
    body_user,
    needs_confirmation,
    ownership_block,
    user_metadata_changes,
)
from batchrun.plan.diff import diff_subset
from batchrun.plan.live import WORKLOAD_KEY, LivePool
from batchrun.plan.rules import Family, pool_family


def pool_address(pool_id: str) -> str:
    return f"pool/{pool_id}"


def _scale_operations(
    desired: Mapping[str, Any], live: LivePool
) -> tuple[list[Operation], list[FieldChange]]:
    have = live.properties
    resizing = live.allocation_state.lower() != "steady"
    stop = [Operation(Stage.POOL, "pool.stop_resize")] if resizing else []
    if desired.get("enableAutoScale", False):
        fields = diff_subset(
            {
                k: desired[k]
                for k in ("enableAutoScale", "autoScaleFormula", "autoScaleEvaluationInterval")
                if k in desired
            },
            have,
        )
        if not fields:
            return [], []
        args = {"autoScaleFormula": desired.get("autoScaleFormula", "")}
        if "autoScaleEvaluationInterval" in desired:
            args["autoScaleEvaluationInterval"] = desired["autoScaleEvaluationInterval"]
        return [*stop, Operation(Stage.POOL, "pool.enable_autoscale", args)], fields
    targets = {
        "targetDedicatedNodes": desired.get("targetDedicatedNodes", 0),
        "targetLowPriorityNodes": desired.get("targetLowPriorityNodes", 0),
    }
    resize_args: dict[str, Any] = dict(targets)
    if "resizeTimeout" in desired:
        resize_args["resizeTimeout"] = desired["resizeTimeout"]
    if have.get("enableAutoScale", False):
        fields = [FieldChange("enableAutoScale", True, False), *diff_subset(targets, have)]
        return [
            Operation(Stage.POOL, "pool.disable_autoscale"),
            Operation(Stage.POOL, "pool.resize", resize_args),
        ], fields
    # resizeTimeout belongs to a resize: it is sent with one, never a reason for one.
    fields = diff_subset(targets, have)
    if not fields:
        return [], []
    return [*stop, Operation(Stage.POOL, "pool.resize", resize_args)], fields


def decide_pool(
    body: Mapping[str, Any], live: LivePool | None, ownership: Ownership, options: PlanOptions
) -> Change:
    """Create; PATCH / resize / autoscale in place; replace for create-only fields; blocked when not ours."""
    address = pool_address(str(body["id"]))
    create = Operation(Stage.POOL, "pool.create", {"body": dict(body)})
    if live is None:
        return Change(address, Action.CREATE, operations=(create,))
    if live.state.lower() == "deleting":
        wait = Operation(Stage.POOL_DELETE, "pool.wait_deleted", {"id": live.id})
        return Change(address, Action.CREATE, reason="the pool is being deleted", operations=(wait, create))
    blocked = ownership_block(address, live.metadata, ownership.workload, options.adopt)
    if blocked is not None:
        return blocked
    desired = {k: v for k, v in body.items() if k not in ("id", "metadata")}
    replace_fields: list[FieldChange] = []
    patch_fields: list[FieldChange] = []
    for key, value in desired.items():
        family = pool_family(key)
        changes = diff_subset(value, live.properties.get(key), key)
        if family is Family.REPLACE:
            replace_fields.extend(FieldChange(c.path, c.before, c.after, True) for c in changes)
        elif family is Family.PATCH:
            patch_fields.extend(changes)
    if replace_fields:
        fields = tuple(replace_fields)
        if live.running_nodes and not options.confirm_replace:
            return needs_confirmation(
                address, f"{live.running_nodes} node(s) running tasks", fields, "replacing"
            )
        delete = Operation(Stage.POOL_DELETE, "pool.delete", {"id": live.id})
        return Change(
            address, Action.REPLACE, fields, reason="forces replacement", operations=(delete, create)
        )
    operations: list[Operation] = []
    patch: dict[str, Any] = {
        c.path.split(".")[0].split("[")[0]: desired[c.path.split(".")[0].split("[")[0]] for c in patch_fields
    }
    metadata_fields = user_metadata_changes(body_user(body), live.metadata)
    adopting = live.metadata.get(WORKLOAD_KEY, "") != ownership.workload
    if adopting:
        metadata_fields.append(
            FieldChange(f"metadata.{WORKLOAD_KEY}", live.metadata.get(WORKLOAD_KEY), ownership.workload)
        )
    if patch or metadata_fields:
        patch["metadata"] = body["metadata"]
        operations.append(Operation(Stage.POOL, "pool.patch", {"id": live.id, "body": patch}))
    scale_ops, scale_fields = _scale_operations(desired, live)
    operations.extend(scale_ops)
    fields = (*patch_fields, *metadata_fields, *scale_fields)
    if not operations:
        return Change(address, Action.NOOP)
    return Change(
        address, Action.UPDATE, fields, reason="adopted" if adopting else "", operations=tuple(operations)
    )
