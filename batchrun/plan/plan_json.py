"""A plan as JSON and back, without loss: what ``plan -o json`` prints and a saved plan holds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from batchrun.plan.actions import Action, Change, FieldChange, InputBinding, Operation, Plan, Stage

PLAN_FORMAT_VERSION = 1


def _field_to_json(item: FieldChange) -> dict[str, Any]:
    data: dict[str, Any] = {"path": item.path, "before": item.before, "after": item.after}
    if item.forces_replacement:
        data["forcesReplacement"] = True
    return data


def change_to_json(change: Change) -> dict[str, Any]:
    data: dict[str, Any] = {"address": change.address, "action": change.action.value}
    if change.fields:
        data["fields"] = [_field_to_json(item) for item in change.fields]
    if change.reason:
        data["reason"] = change.reason
    if change.unblock:
        data["unblock"] = change.unblock
    if change.cause:
        data["cause"] = change.cause
    if change.operations:
        data["operations"] = [
            {"stage": int(op.stage), "name": op.name, "args": dict(op.args)} for op in change.operations
        ]
    return data


def plan_to_json(plan: Plan) -> dict[str, Any]:
    return {
        "formatVersion": PLAN_FORMAT_VERSION,
        "workload": plan.workload,
        "target": plan.target,
        "jobId": plan.job_id,
        "inputs": [{"name": b.name, "container": b.container, "prefix": b.prefix} for b in plan.inputs],
        "outputsContainer": plan.outputs_container,
        "sasExpirySeconds": plan.sas_expiry_seconds,
        "summary": plan.counts(),
        "changes": [change_to_json(change) for change in plan.changes],
    }


def change_from_json(data: Mapping[str, Any]) -> Change:
    return Change(
        address=data["address"],
        action=Action(data["action"]),
        fields=tuple(
            FieldChange(f["path"], f.get("before"), f.get("after"), bool(f.get("forcesReplacement", False)))
            for f in data.get("fields", ())
        ),
        reason=data.get("reason", ""),
        unblock=data.get("unblock", ""),
        cause=data.get("cause", ""),
        operations=tuple(
            Operation(Stage(op["stage"]), op["name"], op.get("args", {})) for op in data.get("operations", ())
        ),
    )


def plan_from_json(data: Mapping[str, Any]) -> Plan:
    if data.get("formatVersion") != PLAN_FORMAT_VERSION:
        from batchrun.errors import PlanError

        raise PlanError(
            f"plan format version {data.get('formatVersion')!r} is not supported "
            f"(expected {PLAN_FORMAT_VERSION}); make the plan again with this batchrun version."
        )
    return Plan(
        workload=data["workload"],
        target=data["target"],
        job_id=data.get("jobId"),
        inputs=tuple(InputBinding(b["name"], b["container"], b["prefix"]) for b in data.get("inputs", ())),
        outputs_container=data.get("outputsContainer"),
        sas_expiry_seconds=int(data.get("sasExpirySeconds", 0)),
        changes=tuple(change_from_json(change) for change in data["changes"]),
    )
