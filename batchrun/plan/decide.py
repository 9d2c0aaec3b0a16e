"""Decisions for the pool and the job: one small pure function each, (desired, live, options) -> Change."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from batchrun.plan.actions import Action, Change, FieldChange, Operation, Stage
from batchrun.plan.bodies import OWNERSHIP_KEYS, Ownership, metadata_list, user_metadata
from batchrun.plan.diff import diff_subset, scalars_equal
from batchrun.plan.live import WORKLOAD_KEY, LiveJob, LivePool
from batchrun.plan.rules import Family, job_family, pool_family

CONFIRM_FLAG = "--confirm-replace"
ADOPT_FLAG = "--adopt"


@dataclass(frozen=True)
class PlanOptions:
    prune: bool = False
    adopt: bool = False
    confirm_replace: bool = False


def ownership_block(address: str, metadata: Mapping[str, str], workload: str, adopt: bool) -> Change | None:
    """A blocked change when the live resource is not this workload's and ``--adopt`` was not given."""
    owner = metadata.get(WORKLOAD_KEY, "")
    if owner == workload or adopt:
        return None
    whose = f"owned by workload {owner!r}" if owner else "not created by batchrun"
    return Change(
        address,
        Action.BLOCKED,
        reason=f"a resource with this id exists and is {whose}; batchrun never changes what it does not own",
        unblock=f"{ADOPT_FLAG} takes it over (or rename it in the manifest)",
    )


def _user_metadata_changes(desired: Mapping[str, Any], live_metadata: Mapping[str, str]) -> list[FieldChange]:
    wanted = user_metadata(desired)
    have = {k: v for k, v in live_metadata.items() if k not in OWNERSHIP_KEYS}
    if not wanted or wanted == have:  # no metadata in the manifest: extra live items are not drift
        return []
    return [FieldChange("metadata", have, wanted)]


def _needs_confirmation(address: str, busy: str, fields: tuple[FieldChange, ...], action: str) -> Change:
    return Change(
        address,
        Action.BLOCKED,
        fields,
        reason=f"{action} would interrupt {busy}",
        unblock=f"{CONFIRM_FLAG} (or answer yes when asked)",
    )


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
            return _needs_confirmation(
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
    metadata_fields = _user_metadata_changes(body_user(body), live.metadata)
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


def body_user(body: Mapping[str, Any]) -> dict[str, Any]:
    """The manifest's own metadata items from a body that also holds batchrun's marks."""
    items = [i for i in body.get("metadata", ()) or () if i["name"] not in OWNERSHIP_KEYS]
    return {"metadata": items}


def job_address(job_id: str) -> str:
    return f"job/{job_id}"


@dataclass(frozen=True)
class JobDecision:
    change: Change
    fresh: bool  # the job is created or replaced: every task is created


def _job_finish(ownership: Ownership, body: Mapping[str, Any], final: str, job_id: str) -> Operation:
    """After the tasks are in: the requested onAllTasksComplete and the current digest and revision."""
    patch: dict[str, Any] = {"metadata": metadata_list(body_user(body)["metadata"], ownership)}
    if final:
        patch["onAllTasksComplete"] = final
    return Operation(Stage.JOB_FINAL, "job.patch", {"id": job_id, "body": patch})


def decide_job(
    body: Mapping[str, Any],
    final_on_all_tasks_complete: str,
    live: LiveJob | None,
    ownership: Ownership,
    options: PlanOptions,
    tasks_change: bool,
    tasks_run: bool,
) -> JobDecision:
    """``tasks_change``: a task is added, replaced, updated or deleted; ``tasks_run``: a task must run."""
    job_id = str(body["id"])
    address = job_address(job_id)
    finish = _job_finish(ownership, body, final_on_all_tasks_complete, job_id)
    create = Operation(Stage.JOB, "job.create", {"body": dict(body)})
    if live is None:
        return JobDecision(Change(address, Action.CREATE, operations=(create, finish)), True)
    if live.state.lower() == "deleting":
        wait = Operation(Stage.JOB_DELETE, "job.wait_deleted", {"id": job_id})
        return JobDecision(
            Change(
                address, Action.CREATE, reason="the job is being deleted", operations=(wait, create, finish)
            ),
            True,
        )
    blocked = ownership_block(address, live.metadata, ownership.workload, options.adopt)
    if blocked is not None:
        return JobDecision(blocked, False)
    desired = {k: v for k, v in body.items() if k not in ("id", "metadata", "onAllTasksComplete")}
    replace_fields: list[FieldChange] = []
    patch_fields: list[FieldChange] = []
    pool_fields: list[FieldChange] = []
    for key, value in desired.items():
        changes = diff_subset(value, live.properties.get(key), key)
        family = job_family(key)
        if family is Family.REPLACE:
            replace_fields.extend(FieldChange(c.path, c.before, c.after, True) for c in changes)
        elif family is Family.POOL_INFO:
            pool_fields.extend(changes)
        elif family is Family.PATCH:
            patch_fields.extend(changes)
    live_final = str(live.properties.get("onAllTasksComplete", "noaction"))
    final_fields: list[FieldChange] = []
    if not scalars_equal("onAllTasksComplete", final_on_all_tasks_complete or "noaction", live_final):
        change = FieldChange("onAllTasksComplete", live_final, final_on_all_tasks_complete or "noaction")
        if live_final.lower() == "terminatejob":
            # Batch refuses terminatejob -> noaction.
            replace_fields.append(FieldChange(change.path, change.before, change.after, True))
        else:
            final_fields.append(change)
    reason = "forces replacement"
    if live.state.lower() in ("completed", "terminating") and tasks_run:
        reason = f"the job is {live.state.lower()} and changed or new tasks must run"
        replace_fields.append(FieldChange("state", live.state, "active", True))
    if replace_fields:
        fields = tuple(replace_fields)
        busy = live.active_tasks + live.running_tasks
        if busy and not options.confirm_replace:
            return JobDecision(
                _needs_confirmation(address, f"{busy} active or running task(s)", fields, "replacing"), False
            )
        delete = Operation(Stage.JOB_DELETE, "job.delete", {"id": job_id})
        return JobDecision(
            Change(address, Action.REPLACE, fields, reason=reason, operations=(delete, create, finish)), True
        )
    operations: list[Operation] = []
    metadata_fields = _user_metadata_changes(body_user(body), live.metadata)
    adopting = live.metadata.get(WORKLOAD_KEY, "") != ownership.workload
    if adopting:
        metadata_fields.append(
            FieldChange(f"metadata.{WORKLOAD_KEY}", live.metadata.get(WORKLOAD_KEY), ownership.workload)
        )
    patch = {c.path.split(".")[0]: desired[c.path.split(".")[0]] for c in patch_fields}
    if patch or metadata_fields:
        patch["metadata"] = body["metadata"]
        operations.append(Operation(Stage.JOB, "job.patch", {"id": job_id, "body": patch}))
    if pool_fields:
        operations.extend(
            (
                Operation(Stage.JOB, "job.disable", {"id": job_id}),
                Operation(Stage.JOB, "job.patch", {"id": job_id, "body": {"poolInfo": desired["poolInfo"]}}),
                Operation(Stage.JOB, "job.enable", {"id": job_id}),
            )
        )
    if final_fields or tasks_change or operations:
        operations.append(finish)
    fields = (*patch_fields, *metadata_fields, *pool_fields, *final_fields)
    if not fields:
        # Only tasks change: the job's digest and revision are refreshed; nothing to show for the job.
        return JobDecision(Change(address, Action.NOOP, operations=tuple(operations)), False)
    return JobDecision(
        Change(
            address, Action.UPDATE, fields, reason="adopted" if adopting else "", operations=tuple(operations)
        ),
        False,
    )
