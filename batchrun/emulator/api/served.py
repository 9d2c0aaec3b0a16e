"""What real Azure Batch fills in, recases and leaves out of the bodies it returns.

Every rule here is read in a recorded live response (Azure/azure-sdk-assets,
``python/sdk/batch/azure-batch/tests/recordings/test_batch.pyTestBatchtest_batch_<name>[sync].json``, named
after each rule) so that a client sees the local target answer with the same defaults, casing and write-only
fields as the real service. Defaults are stored when a body is written (create, PATCH); casing and secrets
are applied when a body is rendered, so the stored values stay the ones the scheduler compares.
Durations are normalised where they are checked (:func:`batchrun.emulator.api.specs.check_duration`).
"""

from __future__ import annotations

import copy
from typing import Any

from batchrun.emulator.model import Body
from batchrun.emulator.timefmt import FOREVER

# Properties Batch accepts but never returns (create_pools, scale_pools: user account passwords are absent
# from GETs; the same holds for container registry passwords and mount keys, see docs/emulator.md).
WRITE_ONLY = frozenset({"password", "accountKey", "sasKey"})
# Pool properties that may hold a write-only field.
WITH_SECRETS = ("userAccounts", "mountConfiguration", "startTask", "virtualMachineConfiguration")

# jobs, files: a task-like body without userIdentity runs as the pool's non-admin auto user.
AUTO_USER = {"scope": "pool", "elevationLevel": "nonadmin"}
# jobs: a job preparation task's constraints, and a job release task's limits.
PREPARATION_CONSTRAINTS = {"maxWallClockTime": FOREVER, "retentionTime": "P7D", "maxTaskRetryCount": 0}
RELEASE_LIMITS = {"maxWallClockTime": "PT15M", "retentionTime": "P7D"}


def with_identity(spec: dict[str, Any]) -> dict[str, Any]:
    """``spec`` (a task, job preparation or release task) with Batch's default ``userIdentity``."""
    identity = spec.get("userIdentity")
    if identity is None:
        spec["userIdentity"] = {"autoUser": dict(AUTO_USER)}
    elif isinstance(identity, dict) and isinstance(identity.get("autoUser"), dict):
        identity["autoUser"] = {**AUTO_USER, **identity["autoUser"]}
    return spec


def preparation_task(prep: dict[str, Any]) -> Body:
    """A job preparation task as Batch stores it (jobs)."""
    filled: Body = {"id": "jobpreparation", "waitForSuccess": True, "rerunOnNodeRebootAfterSuccess": True}
    filled.update(copy.deepcopy(prep))
    filled["constraints"] = {**PREPARATION_CONSTRAINTS, **(prep.get("constraints") or {})}
    return with_identity(filled)


def release_task(release: dict[str, Any]) -> Body:
    """A job release task as Batch stores it (jobs)."""
    filled: Body = {"id": "jobrelease", **RELEASE_LIMITS}
    filled.update({key: value for key, value in copy.deepcopy(release).items() if value is not None})
    return with_identity(filled)


def _windows(vm: dict[str, Any]) -> bool:
    return str(vm.get("nodeAgentSKUId", "")).lower().startswith("batch.node.windows")


def fill_pool_properties(pool: dict[str, Any], windows: bool | None = None) -> None:
    """Fill in place the defaults Batch adds inside the pool properties present in ``pool`` (a new pool, an
    auto pool specification or a PATCH body). ``windows``: whether the pool's nodes run Windows, when
    ``pool`` holds no virtualMachineConfiguration to tell."""
    vm = pool.get("virtualMachineConfiguration")
    if isinstance(vm, dict):
        windows = _windows(vm)
        image = vm.get("imageReference")
        if isinstance(image, dict) and image.get("publisher") is not None:
            image.setdefault("version", "latest")  # create_pools
        for disk in vm.get("dataDisks") or ():
            if isinstance(disk, dict):  # create_pools (batch_disk)
                disk.setdefault("caching", "none")
                disk.setdefault("storageAccountType", "standard_lrs")
    for account in pool.get("userAccounts") or ():
        if isinstance(account, dict):  # create_pools (batch_iaas)
            account.setdefault("elevationLevel", "nonadmin")
            if windows:
                account.setdefault("windowsUserConfiguration", {}).setdefault("loginMode", "batch")
    network = pool.get("networkConfiguration")
    if isinstance(network, dict):  # network_configuration, scale_pools
        network.setdefault("dynamicVNetAssignmentScope", "none")
        network.setdefault("enableAcceleratedNetworking", False)
        endpoints = network.get("endpointConfiguration")
        nat_pools = endpoints.get("inboundNATPools") if isinstance(endpoints, dict) else None
        for nat_pool in nat_pools or ():
            rules = nat_pool.get("networkSecurityGroupRules") if isinstance(nat_pool, dict) else None
            for rule in rules or ():
                if isinstance(rule, dict):
                    rule.setdefault("sourcePortRanges", ["*"])


def pool_is_windows(pool: dict[str, Any]) -> bool:
    vm = pool.get("virtualMachineConfiguration")
    return isinstance(vm, dict) and _windows(vm)


def without_secrets(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: without_secrets(item) for key, item in value.items() if key not in WRITE_ONLY}
    if isinstance(value, list):
        return [without_secrets(item) for item in value]
    return value


def served_pool(body: Body) -> Body:
    """A pool (or an auto pool specification's pool) as Batch returns it: write-only fields left out,
    ``nodeFillType`` capitalised (create_pools: ``Spread``, ``Pack``). ``body`` is a shallow copy whose nested
    values are shared with the stored pool; those are copied, never changed."""
    for name in WITH_SECRETS:
        if name in body:
            body[name] = without_secrets(body[name])
    policy = body.get("taskSchedulingPolicy")
    if isinstance(policy, dict) and isinstance(policy.get("nodeFillType"), str):
        fill = policy["nodeFillType"]
        body["taskSchedulingPolicy"] = {**policy, "nodeFillType": fill[:1].upper() + fill[1:].lower()}
    return body


def served_task(body: Body) -> Body:
    """A task (shallow-copied) without its container registry password (write-only like the pool's)."""
    settings = body.get("containerSettings")
    if isinstance(settings, dict) and isinstance(settings.get("registry"), dict):
        body["containerSettings"] = without_secrets(settings)
    return body


def served_job(body: Body) -> Body:
    """A job or a job specification (shallow-copied) as Batch returns it: its auto pool specification's pool
    like a pool, its job manager, preparation and release tasks without registry passwords."""
    for name in ("jobManagerTask", "jobPreparationTask", "jobReleaseTask"):
        if isinstance(body.get(name), dict):
            body[name] = served_task(dict(body[name]))
    return served_pool_info(body)


def served_pool_info(holder: Body) -> Body:
    """``holder`` (a job or a job specification, shallow-copied) with its auto pool specification's pool
    as Batch returns it; nested values shared with the store are copied, never changed."""
    pool_info = holder.get("poolInfo")
    if not isinstance(pool_info, dict):
        return holder
    auto = pool_info.get("autoPoolSpecification")
    if isinstance(auto, dict) and isinstance(auto.get("pool"), dict):
        auto = {**auto, "pool": served_pool(dict(auto["pool"]))}
        holder["poolInfo"] = {**pool_info, "autoPoolSpecification": auto}
    return holder
