"""Pool routes: create, get, list, exists, update, replace properties, delete (sizing is in ``sizing``)."""

from __future__ import annotations

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator.api.arm_ids import check_arm_ids
from batchrun.emulator.api.base import (
    SUPPORTED_API_VERSIONS,
    Api,
    Call,
    check_conditions,
    check_id,
    check_keys,
    empty,
    endpoint,
    require,
    require_object,
    resource_headers,
)
from batchrun.emulator.api.common import list_page, lookup, read_one, rows_in_id_order, writable
from batchrun.emulator.api.pool_specs import (
    EMPTY_POOL_ONLY,
    PATCH_KEYS,
    check_pool_spec,
    new_pool,
    validate_packages,
    validate_properties,
)
from batchrun.emulator.api.served import fill_pool_properties, pool_is_windows, served_pool
from batchrun.emulator.errors import being_deleted, conflict, exists
from batchrun.emulator.model import Body, find_by_id, public, touch
from batchrun.emulator.timefmt import now_iso

FILTER_FIELDS = ("id", "state", "allocationState", "vmSize", "displayName", "enableAutoScale")


def pool_url(call: Call, pool_id: str) -> str:
    return f"{call.base_url}/pools/{pool_id}"


# api-versions whose pools carry certificateReferences (recorded at 2024-07-01.20.0; absent at 2025-06-01).
WITH_CERTIFICATES = frozenset(SUPPORTED_API_VERSIONS - {"2025-06-01"})


def render(api: Api, call: Call, pool: Body) -> Body:
    body = served_pool(public(pool))
    if call.option("api-version") in WITH_CERTIFICATES:
        body.setdefault("certificateReferences", [])
    else:
        body.pop("certificateReferences", None)
    nodes = api.model.nodes.get(pool["id"], {}).values()
    body["currentDedicatedNodes"] = sum(1 for node in nodes if node.get("isDedicated"))
    body["currentLowPriorityNodes"] = sum(1 for node in nodes if not node.get("isDedicated"))
    body["url"] = pool_url(call, pool["id"])
    return body


def get_pool(api: Api, pool_id: str) -> Body:
    return lookup(api.model.pools, "Pool", pool_id)


def writable_pool(api: Api, call: Call, pool_id: str) -> Body:
    return writable(call, get_pool(api, pool_id), "Pool")


def create_pool(api: Api, call: Call) -> Response:
    body = require_object(call.body, "pool")
    pool_id = check_id(require(body, "id"))
    check_pool_spec(api, body)
    with api.model.lock:
        existing = find_by_id(api.model.pools, pool_id)
        if existing is not None:
            if existing["state"] == "deleting":
                raise being_deleted("Pool", existing["id"])
            raise exists("Pool", pool_id)
        pool = new_pool(api, body, pool_id)
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
        fill_pool_properties(body, pool_is_windows(pool))
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
