"""Compute node routes: list and get; reboot, reimage, disable/enable scheduling, remove nodes, upload the
node's service logs; pool node counts and the supported images (what the local target runs).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator import odata
from batchrun.emulator.api.base import (
    Api,
    Call,
    check_enum,
    check_keys,
    empty,
    endpoint,
    json_response,
    optional,
    require,
    require_object,
    with_metadata,
)
from batchrun.emulator.api.common import list_page, rows_in_id_order
from batchrun.emulator.api.pools import get_pool, pool_url, writable_pool
from batchrun.emulator.api.specs import check_duration
from batchrun.emulator.errors import BatchApiError, conflict, invalid_value, not_found
from batchrun.emulator.model import Body, public, touch
from batchrun.emulator.node import node_root, service_log_files
from batchrun.emulator.node.storage import container_from_url, error_summary
from batchrun.emulator.timefmt import parse_iso

FILTER_FIELDS = ("id", "state", "schedulingState", "isDedicated")
OPTIONS = ("requeue", "terminate", "taskcompletion", "retaineddata")
# Node states a reboot or reimage may start from (Batch: idle or running; a failed node may be rebooted too).
RESTARTABLE = ("idle", "running", "starttaskfailed", "unusable", "offline")
COUNT_STATES = (
    "creating",
    "idle",
    "offline",
    "preempted",
    "rebooting",
    "reimaging",
    "running",
    "starting",
    "startTaskFailed",
    "leavingPool",
    "unknown",
    "unusable",
    "waitingForStartTask",
    "deallocated",
    "deallocating",
    "upgradingOS",
)
# What the local target runs: any Linux image, as processes on this host (the image itself is not used).
# Listed are the Ubuntu images Batch's samples and quickstarts name; other Linux images work alike.
SUPPORTED_IMAGES = (
    ("batch.node.ubuntu 24.04", "canonical", "ubuntu-24_04-lts", "server"),
    ("batch.node.ubuntu 22.04", "canonical", "0001-com-ubuntu-server-jammy", "22_04-lts"),
    ("batch.node.ubuntu 20.04", "canonical", "0001-com-ubuntu-server-focal", "20_04-lts"),
    ("batch.node.ubuntu 18.04", "canonical", "ubuntuserver", "18.04-lts"),
)


def render(call: Call, pool_id: str, node: Body) -> Body:
    body = public(node)
    body["url"] = f"{call.base_url}/pools/{pool_id}/nodes/{node['id']}"
    return body


def get_node(api: Api, pool_id: str, node_id: str) -> Body:
    get_pool(api, pool_id)
    node = api.model.nodes.get(pool_id, {}).get(node_id)
    if node is None:
        raise not_found("Node", node_id)
    return node


def list_nodes(api: Api, call: Call) -> Response:
    pool_id = call.params["poolId"]

    def rows(marker: str | None) -> Iterator[tuple[str, Body]]:
        get_pool(api, pool_id)
        return rows_in_id_order(api.model.nodes.get(pool_id, {}))(marker)

    return list_page(
        api, call, f"/pools/{pool_id}/nodes", FILTER_FIELDS, rows, lambda node: render(call, pool_id, node)
    )


def get_node_route(api: Api, call: Call) -> Response:
    pool_id, node_id = call.params["poolId"], call.params["nodeId"]
    select = odata.parse_select(call.option("$select"))
    with api.model.lock:
        node = get_node(api, pool_id, node_id)
        body = odata.apply_select(render(call, pool_id, node), select)
    return json_response(with_metadata(call.base_url, "nodes/@Element", body))


def _option(call: Call, name: str, choices: tuple[str, ...] = OPTIONS) -> str:
    body = require_object(call.body or {}, "parameters")
    check_keys(body, (name,))
    return check_enum(body, name, choices) or "requeue"


def _restart(api: Api, call: Call, name: str, reimage: bool) -> Response:
    option = _option(call, name)
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        node = get_node(api, pool["id"], call.params["nodeId"])
        if node["state"] not in RESTARTABLE:
            raise conflict(
                "OperationNotValidOnNode",
                f"The node is {node['state']}; it can be {'reimaged' if reimage else 'rebooted'} "
                "when it is idle or running.",
                {"NodeId": node["id"], "NodeState": node["state"]},
            )
        api.scheduler.node_ops.restart(pool, node, option, reimage)
    return empty(202, {"DataServiceId": f"{call.base_url}/pools/{pool['id']}/nodes/{node['id']}"})


def reboot_node(api: Api, call: Call) -> Response:
    return _restart(api, call, "nodeRebootOption", reimage=False)


def reimage_node(api: Api, call: Call) -> Response:
    return _restart(api, call, "nodeReimageOption", reimage=True)


def disable_scheduling(api: Api, call: Call) -> Response:
    option = _option(call, "nodeDisableSchedulingOption", ("requeue", "terminate", "taskcompletion"))
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        node = get_node(api, pool["id"], call.params["nodeId"])
        api.scheduler.node_ops.disable_scheduling(pool, node, option)
    return empty(200)


def enable_scheduling(api: Api, call: Call) -> Response:
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        node = get_node(api, pool["id"], call.params["nodeId"])
        api.scheduler.node_ops.enable_scheduling(pool, node)
    return empty(200)


def remove_nodes(api: Api, call: Call) -> Response:
    body = require_object(call.body, "parameters")
    check_keys(body, ("nodeList", "resizeTimeout", "nodeDeallocationOption"))
    node_ids = require(body, "nodeList", list)
    if not 1 <= len(node_ids) <= 100 or not all(isinstance(item, str) for item in node_ids):
        raise invalid_value("nodeList", len(node_ids), "give 1 to 100 node ids")
    option = check_enum(body, "nodeDeallocationOption", OPTIONS) or "requeue"
    check_duration(body, "resizeTimeout", minimum_seconds=300)
    with api.model.lock:
        pool = writable_pool(api, call, call.params["poolId"])
        if pool["allocationState"] != "steady":
            raise conflict(
                "PoolNotSteady",
                "Nodes can be removed while the pool's allocationState is steady.",
                {"PoolId": pool["id"]},
            )
        if pool.get("enableAutoScale"):
            raise conflict(
                "AutoScalingEnabled",
                "The pool has autoscale enabled; its formula decides its size.",
                {"PoolId": pool["id"]},
            )
        removed = [get_node(api, pool["id"], node_id) for node_id in dict.fromkeys(node_ids)]
        api.scheduler.node_ops.remove(pool, removed, option)
        touch(pool)
        api.model.save_pool(pool)
        headers = {"ETag": pool["eTag"], "DataServiceId": f"{pool_url(call, pool['id'])}/removenodes"}
    return empty(202, headers)


def upload_logs(api: Api, call: Call) -> Response:
    body = require_object(call.body, "uploadBatchServiceLogsConfiguration")
    check_keys(body, ("containerUrl", "startTime", "endTime", "identityReference"))
    container_url = require(body, "containerUrl", str)
    start = _moment(require(body, "startTime", str), "startTime")
    end_text = optional(body, "endTime", str)
    end = _moment(end_text, "endTime") if end_text else None
    with api.model.lock:
        pool = get_pool(api, call.params["poolId"])
        node = get_node(api, pool["id"], call.params["nodeId"])
        root = node_root(api.config.nodes_dir, pool["id"], node["id"])
    request_id = str(uuid.uuid4())
    directory = f"batch-{api.config.account_name}/{pool['id']}/{node['id']}/{request_id}"
    files = service_log_files(root, start, end)
    try:
        container = container_from_url(container_url)
        for relative in files:
            with (root / relative).open("rb") as handle:
                container.upload_blob(f"{directory}/{relative.as_posix()}", handle, overwrite=True)
    except Exception as error:  # the container URL is the caller's: report, never crash
        raise BatchApiError(
            400,
            "InvalidPropertyValue",
            f"The logs could not be uploaded to containerUrl: {error_summary(error)}.",
            {"PropertyName": "containerUrl"},
        ) from None
    result = {"virtualDirectoryName": directory, "numberOfFilesUploaded": len(files)}
    return json_response(
        with_metadata(
            call.base_url, "Microsoft.Azure.Batch.Protocol.Entities.UploadBatchServiceLogsResult", result
        )
    )


def _moment(text: str, name: str) -> datetime:
    try:
        return parse_iso(text)
    except ValueError:
        raise invalid_value(name, text, f"'{name}' must be an ISO-8601 date and time") from None


def node_counts(api: Api, call: Call) -> Response:
    values = []
    with api.model.lock:
        for pool_id in sorted(api.model.pools):
            counts = {
                kind: dict.fromkeys((*COUNT_STATES, "total"), 0) for kind in ("dedicated", "lowPriority")
            }
            for node in api.model.nodes.get(pool_id, {}).values():
                kind = counts["dedicated" if node.get("isDedicated") else "lowPriority"]
                state = next((s for s in COUNT_STATES if s.lower() == str(node["state"]).lower()), "unknown")
                kind[state] += 1
                kind["total"] += 1
            values.append({"poolId": pool_id, **counts})
    return json_response(with_metadata(call.base_url, "poolnodecounts", {"value": values}))


def supported_images(api: Api, call: Call) -> Response:
    values = [
        {
            "nodeAgentSKUId": sku,
            "imageReference": {"publisher": publisher, "offer": offer, "sku": image_sku, "version": "latest"},
            "osType": "linux",
            "capabilities": [],
            "verificationType": "verified",
        }
        for sku, publisher, offer, image_sku in SUPPORTED_IMAGES
    ]
    predicate = odata.parse_filter(call.option("$filter"), ("verificationType", "osType", "nodeAgentSKUId"))
    values = [value for value in values if predicate is None or predicate(value)]
    return json_response(with_metadata(call.base_url, "supportedimages", {"value": values}))


def routes(api: Api) -> list[Route]:
    node = "/pools/{poolId}/nodes/{nodeId}"
    return [
        endpoint(api, "GET", "/pools/{poolId}/nodes", list_nodes),
        endpoint(api, "GET", node, get_node_route),
        endpoint(api, "POST", node + "/reboot", reboot_node),
        endpoint(api, "POST", node + "/reimage", reimage_node),
        endpoint(api, "POST", node + "/disablescheduling", disable_scheduling),
        endpoint(api, "POST", node + "/enablescheduling", enable_scheduling),
        endpoint(api, "POST", node + "/uploadbatchservicelogs", upload_logs, durable=False),
        endpoint(api, "POST", "/pools/{poolId}/removenodes", remove_nodes),
        endpoint(api, "GET", "/nodecounts", node_counts),
        endpoint(api, "GET", "/supportedimages", supported_images),
    ]
