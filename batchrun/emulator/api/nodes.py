"""Compute node routes: list and get, with the states the scheduler maintains."""

from __future__ import annotations

from collections.abc import Iterator

from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator import odata
from batchrun.emulator.api.base import Api, Call, endpoint, json_response
from batchrun.emulator.api.common import list_page, rows_in_id_order
from batchrun.emulator.api.pools import get_pool
from batchrun.emulator.errors import not_found
from batchrun.emulator.model import Body, public

FILTER_FIELDS = ("id", "state", "schedulingState", "isDedicated")


def render(call: Call, pool_id: str, node: Body) -> Body:
    body = public(node)
    body["url"] = f"{call.base_url}/pools/{pool_id}/nodes/{node['id']}"
    return body


def list_nodes(api: Api, call: Call) -> Response:
    pool_id = call.params["poolId"]

    def rows(marker: str | None) -> Iterator[tuple[str, Body]]:
        get_pool(api, pool_id)
        return rows_in_id_order(api.model.nodes.get(pool_id, {}))(marker)

    return list_page(
        api, call, f"/pools/{pool_id}/nodes", FILTER_FIELDS, rows, lambda node: render(call, pool_id, node)
    )


def get_node(api: Api, call: Call) -> Response:
    pool_id, node_id = call.params["poolId"], call.params["nodeId"]
    select = odata.parse_select(call.option("$select"))
    with api.model.lock:
        get_pool(api, pool_id)
        node = api.model.nodes.get(pool_id, {}).get(node_id)
        if node is None:
            raise not_found("Node", node_id)
        return json_response(odata.apply_select(render(call, pool_id, node), select))


def routes(api: Api) -> list[Route]:
    return [
        endpoint(api, "GET", "/pools/{poolId}/nodes", list_nodes),
        endpoint(api, "GET", "/pools/{poolId}/nodes/{nodeId}", get_node),
    ]
