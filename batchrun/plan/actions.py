"""The plan as pure data: one :class:`Change` per resource address, with the operations that carry it out.

A plan serialises to JSON and back without loss (:func:`plan_to_json` / :func:`plan_from_json`). It never
holds a secret: task bodies reference storage inputs and the outputs container by name, and the executor
turns those names into SAS URLs at apply time (generated SAS must never count as a change, nor be printed).

``Change.reason`` and ``FieldChange`` are for display; the executor reads only ``Change.operations``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class Action(str, Enum):
    NOOP = "no-op"
    CREATE = "create"
    UPDATE = "update"
    REPLACE = "replace"
    DELETE = "delete"
    BLOCKED = "blocked"


class Stage(int, Enum):
    """Dependency order of operations: storage and packages -> pool -> job -> tasks; deletes in reverse."""

    STORAGE = 10
    PACKAGES = 20
    RESULTS = 25  # the record of results is saved before any task or job that holds results is deleted
    TASK_DELETE = 30
    JOB_DELETE = 40
    POOL_DELETE = 50
    POOL = 60
    JOB = 70
    TASKS = 80
    JOB_FINAL = 90
    ORPHAN_POOL_DELETE = 92  # a pool no longer in the manifest goes last, once jobs have moved off it
    CONTAINER_DELETE = 95


@dataclass(frozen=True, slots=True)
class FieldChange:
    """One field's before -> after (display only); ``forces_replacement`` marks what causes a replace."""

    path: str
    before: Any
    after: Any
    forces_replacement: bool = False


@dataclass(frozen=True, slots=True)
class Operation:
    """One call the executor makes. ``name`` is e.g. ``pool.resize``; ``args`` is JSON-serialisable data."""

    stage: Stage
    name: str
    args: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Change:
    address: str
    action: Action
    fields: tuple[FieldChange, ...] = ()
    reason: str = ""  # why (display only)
    unblock: str = ""  # for blocked: the flag or edit that would unblock it
    operations: tuple[Operation, ...] = ()
    cause: str = ""  # a task's reason as a category (see batchrun.plan.decide_tasks.Cause), for counting

    @property
    def runs(self) -> bool:
        """A task change that makes the task run (again)."""
        return self.action in (Action.CREATE, Action.REPLACE) and self.kind == "task"

    @property
    def kind(self) -> str:
        return self.address.split("/", 1)[0]


@dataclass(frozen=True)
class InputBinding:
    """Where a storage input lives, so task bodies can reference it by name."""

    name: str
    container: str
    prefix: str


@dataclass(frozen=True)
class Plan:
    """Everything ``apply`` needs: ordered changes plus the storage bindings used to build task SAS URLs."""

    workload: str
    target: str  # the target line this plan was made against (no secrets)
    changes: tuple[Change, ...]
    inputs: tuple[InputBinding, ...] = ()
    outputs_container: str | None = None
    sas_expiry_seconds: int = 0
    job_id: str | None = None

    @property
    def has_changes(self) -> bool:
        return any(change.action is not Action.NOOP for change in self.changes)

    @property
    def blocked(self) -> tuple[Change, ...]:
        return tuple(change for change in self.changes if change.action is Action.BLOCKED)

    def counts(self) -> dict[str, int]:
        result = {action.value: 0 for action in Action}
        for change in self.changes:
            result[change.action.value] += 1
        return result


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
