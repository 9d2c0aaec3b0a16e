"""Pool specifications: the properties of a pool body, checked, and the stored pool built from them.

Shared by ``POST /pools`` and by auto pools (``poolInfo.autoPoolSpecification.pool`` of a job or a job
schedule, checked with the ``prefix`` that names it in errors).
"""

from __future__ import annotations

import copy
from typing import Any

from batchrun.emulator.api.arm_ids import check_arm_ids
from batchrun.emulator.api.base import (
    Api,
    check_enum,
    check_int_range,
    check_keys,
    optional,
    require,
    require_object,
)
from batchrun.emulator.api.served import fill_pool_properties
from batchrun.emulator.api.specs import (
    AUTOSCALE_INTERVAL_MAX,
    check_command_spec,
    check_duration,
    check_name_values,
    check_package_references,
)
from batchrun.emulator.errors import BatchApiError, conflict, invalid_value
from batchrun.emulator.model import Body, internal, touch
from batchrun.emulator.packages import UnresolvedPackage, resolve
from batchrun.emulator.scheduler import autoscale
from batchrun.emulator.timefmt import now_iso

CREATE_KEYS = (
    "id",
    "displayName",
    "vmSize",
    "virtualMachineConfiguration",
    "resizeTimeout",
    "targetDedicatedNodes",
    "targetLowPriorityNodes",
    "enableAutoScale",
    "autoScaleFormula",
    "autoScaleEvaluationInterval",
    "enableInterNodeCommunication",
    "networkConfiguration",
    "startTask",
    "applicationPackageReferences",
    "taskSlotsPerNode",
    "taskSchedulingPolicy",
    "userAccounts",
    "metadata",
    "mountConfiguration",
    "upgradePolicy",
    # In the 2025-06-01 REST samples though azure-batch 15.1 no longer models it.
    "targetNodeCommunicationMode",
    # Older API versions (and azure-batch 14.x, which always sends certificateReferences).
    "certificateReferences",
    "applicationLicenses",
    "cloudServiceConfiguration",
    "resourceTags",
)
PATCH_KEYS = (
    "displayName",
    "vmSize",
    "enableInterNodeCommunication",
    "startTask",
    "applicationPackageReferences",
    "metadata",
    "virtualMachineConfiguration",
    "taskSlotsPerNode",
    "taskSchedulingPolicy",
    "networkConfiguration",
    "userAccounts",
    "mountConfiguration",
    "upgradePolicy",
    "targetNodeCommunicationMode",
    "certificateReferences",
    "resourceTags",
)
EMPTY_POOL_ONLY = (
    "displayName",
    "vmSize",
    "virtualMachineConfiguration",
    "enableInterNodeCommunication",
    "networkConfiguration",
    "taskSlotsPerNode",
    "taskSchedulingPolicy",
    "userAccounts",
    "mountConfiguration",
    "upgradePolicy",
)
START_TASK_KEYS = (
    "commandLine",
    "containerSettings",
    "resourceFiles",
    "environmentSettings",
    "userIdentity",
    "maxTaskRetryCount",
    "waitForSuccess",
)
VM_KEYS = (
    "imageReference",
    "nodeAgentSKUId",
    "windowsConfiguration",
    "dataDisks",
    "licenseType",
    "containerConfiguration",
    "diskEncryptionConfiguration",
    "nodePlacementConfiguration",
    "extensions",
    "osDisk",
    "securityProfile",
    "serviceArtifactReference",
)
DEFAULT_INTERVAL = autoscale.DEFAULT_INTERVAL


def validate_start_task(value: Any, prefix: str = "") -> None:
    start_task = require_object(value, prefix + "startTask")
    check_keys(start_task, START_TASK_KEYS, prefix + "startTask.")
    check_command_spec(start_task, prefix + "startTask.")
    check_int_range(start_task, "maxTaskRetryCount", -1, 100, prefix + "startTask.")
    optional(start_task, "waitForSuccess", bool, prefix + "startTask.")


def validate_properties(body: dict[str, Any], prefix: str = "") -> None:
    """Types and shapes of the properties a create or PATCH may carry (only those present)."""
    for name in ("displayName", "vmSize"):
        optional(body, name, str, prefix)
    optional(body, "enableInterNodeCommunication", bool, prefix)
    check_int_range(body, "taskSlotsPerNode", 1, 256, prefix)
    check_enum(body, "targetNodeCommunicationMode", ("default", "classic", "simplified"), prefix)
    vm = optional(body, "virtualMachineConfiguration", dict, prefix)
    if vm is not None:
        check_keys(vm, VM_KEYS, prefix + "virtualMachineConfiguration.")
        require(vm, "nodeAgentSKUId", str, prefix + "virtualMachineConfiguration.")
        require(vm, "imageReference", dict, prefix + "virtualMachineConfiguration.")
    policy = optional(body, "taskSchedulingPolicy", dict, prefix)
    if policy is not None:
        check_keys(policy, ("nodeFillType",), prefix + "taskSchedulingPolicy.")
        check_enum(policy, "nodeFillType", ("spread", "pack"), prefix + "taskSchedulingPolicy.")
    for name in ("networkConfiguration", "upgradePolicy"):
        optional(body, name, dict, prefix)
    for name in ("userAccounts", "mountConfiguration"):
        optional(body, name, list, prefix)
    if body.get("metadata") is not None:
        check_name_values(body["metadata"], prefix + "metadata")
    if body.get("startTask") is not None:
        validate_start_task(body["startTask"], prefix)
    check_certificate_references(body, prefix)
    licenses = optional(body, "applicationLicenses", list, prefix)
    if licenses is not None and not all(isinstance(item, str) for item in licenses):
        raise invalid_value(prefix + "applicationLicenses", licenses, "licenses are strings")


def check_certificate_references(body: dict[str, Any], prefix: str = "") -> None:
    """``certificateReferences``: an empty list is accepted as Batch does (azure-batch 14.x always sends one);
    the local target holds no certificates, so a reference to one cannot be satisfied."""
    references = optional(body, "certificateReferences", list, prefix)
    if references:
        raise invalid_value(
            prefix + "certificateReferences",
            len(references),
            "the local Batch emulator has no certificates; leave certificateReferences empty "
            "(certificates are retired in Azure Batch too: use Azure Key Vault)",
        )


def refuse_cloud_service(body: dict[str, Any], prefix: str = "") -> None:
    """CloudServiceConfiguration pools were retired on 29 February 2024; Batch no longer creates them."""
    if body.get("cloudServiceConfiguration") is not None:
        raise invalid_value(
            prefix + "cloudServiceConfiguration",
            "cloudServiceConfiguration",
            "CloudServiceConfiguration pools are retired (29 February 2024); "
            "use virtualMachineConfiguration with a Linux image",
        )


def validate_packages(api: Api, references: Any) -> None:
    check_package_references(references, "applicationPackageReferences")
    if len(references) > 10:
        raise invalid_value("applicationPackageReferences", len(references), "at most 10 references per pool")
    for reference in references:
        try:
            resolve(api.model, reference)
        except UnresolvedPackage as error:
            raise conflict(
                "InvalidApplicationPackageReferences",
                f"One or more of the specified application package references are invalid: {error}.",
                {"ApplicationId": str(reference.get("applicationId"))},
            ) from None


def run_autoscale(api: Api, pool: Body, formula: str) -> tuple[Body, tuple[int, int, str] | None]:
    """Evaluate ``formula`` for ``pool``: (autoScaleRun body, targets or None when the formula failed)."""
    try:
        results = autoscale.evaluate(formula, autoscale.task_metrics(api.model, pool["id"]))
        chosen = autoscale.targets(
            results, pool.get("targetDedicatedNodes", 0), pool.get("targetLowPriorityNodes", 0)
        )
    except autoscale.FormulaError as error:
        raise BatchApiError(
            400,
            "InvalidAutoScaleFormula",
            f"The autoscale formula is not supported by the local Batch emulator: {error}.",
            {"autoScaleFormula": formula},
        ) from None
    return {"timestamp": now_iso(), "results": autoscale.results_text(results, chosen)}, chosen


def apply_targets(pool: Body, dedicated: int, low_priority: int, deallocation: str) -> None:
    if pool.get("targetDedicatedNodes") != dedicated or pool.get("targetLowPriorityNodes") != low_priority:
        pool["targetDedicatedNodes"] = dedicated
        pool["targetLowPriorityNodes"] = low_priority
        internal(pool)["deallocation"] = deallocation
        pool.pop("resizeErrors", None)
        set_allocation_state(pool, "resizing")


def set_allocation_state(pool: Body, state: str) -> None:
    if pool.get("allocationState") != state:
        pool["allocationState"] = state
        pool["allocationStateTransitionTime"] = now_iso()


# ---- handlers


def check_pool_spec(api: Api, body: dict[str, Any], prefix: str = "") -> None:
    """Everything a new pool's body must satisfy before it is stored (``id`` aside)."""
    check_keys(body, CREATE_KEYS, prefix)
    require(body, "vmSize", str, prefix)
    refuse_cloud_service(body, prefix)
    require(body, "virtualMachineConfiguration", dict, prefix)
    validate_properties(body, prefix)
    check_arm_ids(body, api.config.subscription_id)
    if optional(body, "enableAutoScale", bool, prefix):
        require(body, "autoScaleFormula", str, prefix)
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if body.get(name) is not None:
                raise invalid_value(
                    prefix + name, body[name], f"'{name}' must not be set when enableAutoScale is true"
                )
    check_int_range(body, "targetDedicatedNodes", 0, 1000, prefix)
    check_int_range(body, "targetLowPriorityNodes", 0, 1000, prefix)
    check_duration(body, "resizeTimeout", prefix, minimum_seconds=300)
    check_duration(
        body,
        "autoScaleEvaluationInterval",
        prefix,
        minimum_seconds=300,
        maximum_seconds=AUTOSCALE_INTERVAL_MAX,
    )
    optional(body, "autoScaleFormula", str, prefix)


def pool_defaults(body: dict[str, Any]) -> Body:
    """The properties Batch fills in on a pool (or an auto pool specification) the body did not set."""
    policy = body.get("taskSchedulingPolicy") or {"nodeFillType": "spread"}
    auto = bool(body.get("enableAutoScale", False))
    filled: Body = {
        **copy.deepcopy(body),
        "resizeTimeout": body.get("resizeTimeout", "PT15M"),
        "targetDedicatedNodes": int(body.get("targetDedicatedNodes") or 0),
        "targetLowPriorityNodes": int(body.get("targetLowPriorityNodes") or 0),
        "enableAutoScale": auto,
        "enableInterNodeCommunication": body.get("enableInterNodeCommunication", False),
        "taskSlotsPerNode": int(body.get("taskSlotsPerNode") or 1),
        "taskSchedulingPolicy": {"nodeFillType": policy.get("nodeFillType", "spread")},
    }
    fill_pool_properties(filled)
    return filled


def new_pool(api: Api, body: dict[str, Any], pool_id: str) -> Body:
    """Store a new pool built from a checked body (model lock held); its nodes follow from the scheduler."""
    if "applicationPackageReferences" in body:
        validate_packages(api, body["applicationPackageReferences"])
    moment = now_iso()
    pool: Body = pool_defaults(body)
    pool.update(
        {
            "id": pool_id,
            "creationTime": moment,
            "state": "active",
            "stateTransitionTime": moment,
            "allocationState": "steady",
            "allocationStateTransitionTime": moment,
        }
    )
    touch(pool)
    if pool["enableAutoScale"]:
        pool["autoScaleEvaluationInterval"] = body.get(
            "autoScaleEvaluationInterval", autoscale.DEFAULT_INTERVAL
        )
        run, chosen = run_autoscale(api, pool, body["autoScaleFormula"])
        pool["autoScaleRun"] = run
        pool["targetDedicatedNodes"], pool["targetLowPriorityNodes"] = 0, 0
        if chosen:
            apply_targets(pool, *chosen)
        internal(pool)["nextAutoScale"] = autoscale.next_evaluation(pool)
    elif pool["targetDedicatedNodes"] or pool["targetLowPriorityNodes"]:
        set_allocation_state(pool, "resizing")
    api.model.pools[pool_id] = pool
    api.model.nodes[pool_id] = {}
    api.model.save_pool(pool)
    api.model.notify()
    return pool
