"""Decisions for the pool (pure): create; PATCH, resize or autoscale in place; replace; or blocked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchrun.plan.actions import Action, Change, FieldChange, Operation, Stage
from batchrun.plan.bodies import Ownership, marked
from batchrun.plan.decide_common import (
    PlanOptions,
    body_user,
    kept_metadata,
    needs_confirmation,
    others_metadata,
    ownership_block,
    user_metadata_changes,
)
from batchrun.plan.diff import diff_properties, diff_subset
from batchrun.plan.last_applied import read_applied
from batchrun.plan.live import WORKLOAD_KEY, LivePool, counted_nodes
from batchrun.plan.rules import POOL_REVERT, Family, pool_family
from batchrun.plan.secrets import SECRETS_KEY, masked_field, secret_changes

SCALE_KEYS = frozenset(
    key
    for key in (
        "targetDedicatedNodes",
        "targetLowPriorityNodes",
        "resizeTimeout",
        "enableAutoScale",
        "autoScaleFormula",
        "autoScaleEvaluationInterval",
    )
)
KEPT = "(kept: not set by batchrun)"
NODE_BOOT_KEYS = frozenset({"startTask", "applicationPackageReferences"})  # what a node takes when it boots


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


def _pool_is_empty(live: LivePool) -> bool:
    """No nodes and not allocating any: the properties of the EMPTY_POOL family can be PATCHed."""
    have = live.properties
    nodes = counted_nodes(have)
    return nodes == 0 and live.allocation_state.lower() == "steady"


def _forced(fields: tuple[FieldChange, ...] | list[FieldChange]) -> list[FieldChange]:
    return [FieldChange(f.path, f.before, f.after, True) for f in fields]


def _top_key(path: str) -> str:
    return path.split(".")[0].split("[")[0]


def decide_pool(
    body: Mapping[str, Any], live: LivePool | None, ownership: Ownership, options: PlanOptions
) -> Change:
    """Create; PATCH / updateproperties / resize / autoscale in place; replace for create-only fields (and
    for empty-pool-only fields while the pool has nodes); blocked when not ours.

    ``body`` comes from :func:`batchrun.plan.bodies.pool_body` (it carries the ownership marks)."""
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
    applied = read_applied(live.metadata)
    empty = _pool_is_empty(live)
    diffs = diff_properties(
        "pool", body, live.properties, None if applied is None else applied.keys, SCALE_KEYS
    )
    replace_fields: list[FieldChange] = []
    patch_fields: list[FieldChange] = []
    notes: list[FieldChange] = []
    patch: dict[str, Any] = {}
    remove_start_task = False

    def in_place(key: str) -> bool:
        family = pool_family(key)
        return family is Family.PATCH or (family is Family.EMPTY_POOL and empty)

    for item in diffs:
        if item.status == "kept":
            notes.extend(FieldChange(f.path, f.before, KEPT) for f in item.fields)
        elif item.status == "removed" and item.key == "startTask":
            remove_start_task = True
            patch_fields.extend(item.fields)
        elif item.status == "removed":
            if item.key in POOL_REVERT and in_place(item.key):
                patch[item.key] = POOL_REVERT[item.key]
                patch_fields.extend(item.fields)
            else:
                replace_fields.extend(_forced(item.fields))
        elif in_place(item.key):
            patch[item.key] = body[item.key]
            patch_fields.extend(item.fields)
        else:
            replace_fields.extend(_forced(item.fields))
    for secret in secret_changes(body, live.metadata.get(SECRETS_KEY)):
        key = _top_key(secret.path)
        if key not in body:
            continue  # the whole property is removed: shown and reverted above
        if in_place(key):
            patch[key] = body[key]
            patch_fields.append(secret)
        else:
            replace_fields.append(FieldChange(secret.path, secret.before, secret.after, True))
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
    desired_user = body_user(body)
    metadata_fields = user_metadata_changes(desired_user, live.metadata)
    adopting = live.metadata.get(WORKLOAD_KEY, "") != ownership.workload
    if adopting:
        metadata_fields.append(
            FieldChange(f"metadata.{WORKLOAD_KEY}", live.metadata.get(WORKLOAD_KEY), ownership.workload)
        )
    if patch or metadata_fields or remove_start_task:
        kept = kept_metadata(desired_user, live.metadata)
        metadata = marked(body, ownership, kept)[0]["metadata"]
        notes.extend(others_metadata(desired_user, live.metadata))
        if remove_start_task:
            # PATCH leaves an omitted startTask as it is; updateproperties removes it (REC update_pools).
            references = patch.pop("applicationPackageReferences", None)
            if references is None:
                references = body.get("applicationPackageReferences") or (
                    live.properties.get("applicationPackageReferences") or [] if applied is None else []
                )
            replacement = {"applicationPackageReferences": references, "metadata": metadata}
            if "targetNodeCommunicationMode" in body:  # updateproperties resets an omitted mode to default
                replacement["targetNodeCommunicationMode"] = body["targetNodeCommunicationMode"]
            operations.append(
                Operation(Stage.POOL, "pool.replace_properties", {"id": live.id, "body": replacement})
            )
        if patch or not remove_start_task:
            patch["metadata"] = metadata
            operations.append(Operation(Stage.POOL, "pool.patch", {"id": live.id, "body": patch}))
    reboot_note = _nodes_keep_old(patch_fields, live, options.reboot_nodes)
    if reboot_note and options.reboot_nodes:
        operations.append(Operation(Stage.POOL, "pool.reboot_nodes", {"id": live.id}))
    scale_ops, scale_fields = _scale_operations(body, live)
    operations.extend(scale_ops)
    if not operations:
        return Change(address, Action.NOOP)
    fields = tuple(masked_field(f) for f in (*patch_fields, *metadata_fields, *scale_fields, *notes))
    reason = "; ".join(part for part in ("adopted" if adopting else "", reboot_note) if part)
    return Change(address, Action.UPDATE, fields, reason=reason, operations=tuple(operations))


def _nodes_keep_old(patch_fields: list[FieldChange], live: LivePool, reboot: bool) -> str:
    """As on Azure, nodes already in the pool keep the start task and application packages they booted with
    until they are rebooted or reimaged: say so (and what ``--reboot-nodes`` does) when those change."""
    changed = sorted({_top_key(f.path) for f in patch_fields} & NODE_BOOT_KEYS)
    have = live.properties
    nodes = counted_nodes(have)
    if not changed or not nodes:
        return ""
    names = {"startTask": "start task", "applicationPackageReferences": "application packages"}
    what = " and ".join(names[key] for key in changed)
    if reboot:
        return f"{nodes} node(s) will be rebooted once their running tasks finish, to get the new {what}"
    return (
        f"{nodes} node(s) keep the {what} they booted with until rebooted or reimaged: "
        "--reboot-nodes reboots them once their running tasks finish"
    )
