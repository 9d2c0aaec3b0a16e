"""Pool routes: create, get, list, exists, update, replace properties, delete (sizing is in ``sizing``)."""

from __future__ import annotations

import copy
from typing import Any

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator.api.arm_ids import check_arm_ids
from batchrun.emulator.api.base import (
    Api,
    Call,
    check_conditions,
    check_enum,
    check_id,
    check_int_range,
    check_keys,
    empty,
    endpoint,
    optional,
    require,
    require_object,
    resource_headers,
)
from batchrun.emulator.api.common import list_page, lookup, read_one, rows_in_id_order, writable
from batchrun.emulator.api.specs import (
    AUTOSCALE_INTERVAL_MAX,
    check_command_spec,
    check_duration,
    check_name_values,
    check_package_references,
)
from batchrun.emulator.errors import BatchApiError, being_deleted, conflict, exists, invalid_value
from batchrun.emulator.model import Body, find_by_id, internal, public, touch
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
FILTER_FIELDS = ("id", "state", "allocationState", "vmSize", "displayName", "enableAutoScale")
DEFAULT_INTERVAL = autoscale.DEFAULT_INTERVAL


def pool_url(call: Call, pool_id: str) -> str:
    return f"{call.base_url}/pools/{pool_id}"


def render(api: Api, call: Call, pool: Body) -> Body:
    body = public(pool)
    nodes = api.model.nodes.get(pool["id"], {}).values()
    body["currentDedicatedNodes"] = sum(1 for node in nodes if node.get("isDedicated"))
    body["currentLowPriorityNodes"] = sum(1 for node in nodes if not node.get("isDedicated"))
    body["url"] = pool_url(call, pool["id"])
    return body


def get_pool(api: Api, pool_id: str) -> Body:
    return lookup(api.model.pools, "Pool", pool_id)


def writable_pool(api: Api, call: Call, pool_id: str) -> Body:
    return writable(call, get_pool(api, pool_id), "Pool")


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
    return {"timestamp": now_iso(), "results": autoscale.results_text(results)}, chosen


def apply_targets(pool: Body, dedicated: int, low_priority: int, deallocation: str) -> None:
    if pool.get("targetDedicatedNodes") != dedicated or pool.get("targetLowPriorityNodes") != low_priority:
        pool["targetDedicatedNodes"] = dedicated
        pool["targetLowPriorityNodes"] = low_priority
        internal(pool)["deallocation"] = deallocation
        set_allocation_state(pool, "resizing")


def set_allocation_state(pool: Body, state: str) -> None:
    if pool.get("allocationState") != state:
        pool["allocationState"] = state
        pool["allocationStateTransitionTime"] = now_iso()


# ---- handlers
def create_pool(api: Api, call: Call) -> Response:
    body = require_object(call.body, "pool")
    check_keys(body, CREATE_KEYS)
    pool_id = check_id(require(body, "id"))
    require(body, "vmSize")
    refuse_cloud_service(body)
    require(body, "virtualMachineConfiguration", dict)
    validate_properties(body)
    check_arm_ids(body, api.config.subscription_id)
    auto = optional(body, "enableAutoScale", bool) or False
    if auto:
        require(body, "autoScaleFormula")
        for name in ("targetDedicatedNodes", "targetLowPriorityNodes"):
            if body.get(name) is not None:
                raise invalid_value(
                    name, body[name], f"'{name}' must not be set when enableAutoScale is true"
                )
    dedicated = check_int_range(body, "targetDedicatedNodes", 0, 1000) or 0
    low_priority = check_int_range(body, "targetLowPriorityNodes", 0, 1000) or 0
    slots = check_int_range(body, "taskSlotsPerNode", 1, 256) or 1
    check_duration(body, "resizeTimeout", minimum_seconds=300)
    check_duration(
        body, "autoScaleEvaluationInterval", minimum_seconds=300, maximum_seconds=AUTOSCALE_INTERVAL_MAX
    )
    optional(body, "autoScaleFormula", str)
    policy = optional(body, "taskSchedulingPolicy", dict) or {"nodeFillType": "spread"}
    with api.model.lock:
        existing = find_by_id(api.model.pools, pool_id)
        if existing is not None:
            if existing["state"] == "deleting":
                raise being_deleted("Pool", existing["id"])
            raise exists("Pool", pool_id)
        if "applicationPackageReferences" in body:
            validate_packages(api, body["applicationPackageReferences"])
        moment = now_iso()
        pool: Body = copy.deepcopy(body)
        pool.update(
            {
                "creationTime": moment,
                "state": "active",
                "stateTransitionTime": moment,
                "allocationState": "steady",
                "allocationStateTransitionTime": moment,
                "resizeTimeout": body.get("resizeTimeout", "PT15M"),
                "targetDedicatedNodes": dedicated,
                "targetLowPriorityNodes": low_priority,
                "enableAutoScale": auto,
                "enableInterNodeCommunication": body.get("enableInterNodeCommunication", False),
                "taskSlotsPerNode": slots,
                "taskSchedulingPolicy": {"nodeFillType": policy.get("nodeFillType", "spread")},
                "certificateReferences": body.get("certificateReferences", []),
            }
        )
        touch(pool)
        if auto:
            pool["autoScaleEvaluationInterval"] = body.get("autoScaleEvaluationInterval", DEFAULT_INTERVAL)
            run, chosen = run_autoscale(api, pool, body["autoScaleFormula"])
            pool["autoScaleRun"] = run
            pool["targetDedicatedNodes"], pool["targetLowPriorityNodes"] = 0, 0
            if chosen:
                apply_targets(pool, *chosen)
            internal(pool)["nextAutoScale"] = autoscale.next_evaluation(pool)
        elif dedicated or low_priority:
            set_allocation_state(pool, "resizing")
        api.model.pools[pool_id] = pool
        api.model.nodes[pool_id] = {}
        api.model.save_pool(pool)
        api.model.notify()
        return empty(201, resource_headers(pool, pool_url(call, pool_id)))


def list_pools(api: Api, call: Call) -> Response:
    return list_page(
        api,
        call,
        "/pools",
        FILTER_FIELDS,
        rows_in_id_order(api.model.pools),
        lambda pool: render(api, call, pool),
    )


def get_pool_route(api: Api, call: Call) -> Response:
    return read_one(
        api,
        call,
        lambda: get_pool(api, call.params["poolId"]),
        lambda pool: render(api, call, pool),
        lambda pool: pool_url(call, pool["id"]),
    )


def pool_exists(api: Api, call: Call) -> Response:
    with api.model.lock:
        pool = get_pool(api, call.params["poolId"])
        check_conditions(call, pool, read=True)
        return empty(200, resource_headers(pool))


def update_pool(api: Api, call: Call) -> Response:
    body = require_object(call.body, "pool")
    check_keys(body, PATCH_KEYS)
    validate_properties(body)
    check_arm_ids(body, api.config.subscription_id)
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        nodes = api.model.nodes.get(pool["id"], {})
        for name in EMPTY_POOL_ONLY:
            if name in body and body[name] != pool.get(name) and nodes:
                raise conflict(
                    "PoolNotEmpty",
                    f"The property '{name}' can only be changed while the pool has no "
                    "compute nodes; resize the pool to 0 nodes first.",
                    {"PropertyName": name},
                )
        if "applicationPackageReferences" in body:
            validate_packages(api, body["applicationPackageReferences"])
        for name, value in body.items():
            pool[name] = value
        touch(pool)
        api.model.save_pool(pool)
        return empty(200, resource_headers(pool, pool_url(call, pool["id"])))


def replace_pool_properties(api: Api, call: Call) -> Response:
    body = require_object(call.body, "pool")
    check_keys(
        body,
        (
            "startTask",
            "applicationPackageReferences",
            "metadata",
            "certificateReferences",
            "targetNodeCommunicationMode",
        ),
    )
    require(body, "applicationPackageReferences", list)
    require(body, "metadata", list)
    validate_properties(body)
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        validate_packages(api, body["applicationPackageReferences"])
        pool["applicationPackageReferences"] = body["applicationPackageReferences"]
        pool["metadata"] = body["metadata"]
        pool["certificateReferences"] = body.get("certificateReferences", [])
        if body.get("targetNodeCommunicationMode") is not None:
            pool["targetNodeCommunicationMode"] = body["targetNodeCommunicationMode"]
        if body.get("startTask") is not None:
            pool["startTask"] = body["startTask"]
        else:
            pool.pop("startTask", None)
        touch(pool)
        api.model.save_pool(pool)
        return empty(204, resource_headers(pool, pool_url(call, pool["id"])))


def delete_pool(api: Api, call: Call) -> Response:
    with api.model.lock:
        pool = get_pool(api, call.params["poolId"])
        check_conditions(call, pool, read=False)
        if pool["state"] != "deleting":
            pool["state"] = "deleting"
            pool["stateTransitionTime"] = now_iso()
            touch(pool)
            api.model.save_pool(pool)
            api.model.notify()
    return empty(202)


def routes(api: Api) -> list[Route]:
    return [
        endpoint(api, "POST", "/pools", create_pool),
        endpoint(api, "GET", "/pools", list_pools),
        endpoint(api, "HEAD", "/pools/{poolId}", pool_exists),
        endpoint(api, "GET", "/pools/{poolId}", get_pool_route),
        endpoint(api, "PATCH", "/pools/{poolId}", update_pool),
        endpoint(api, "DELETE", "/pools/{poolId}", delete_pool),
        endpoint(api, "POST", "/pools/{poolId}/updateproperties", replace_pool_properties),
    ]
