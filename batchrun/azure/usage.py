"""Nodes now in a pool, for node-hours: one ``list_nodes`` (``$select=id,isDedicated,allocationTime``)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from azure.batch import BatchClient
from azure.core.exceptions import ResourceNotFoundError

from batchrun.azure.clients import Clients
from batchrun.azure.failures import translated
from batchrun.cost.estimate import NodeUsage
from batchrun.model import Workload

PAGE_SIZE = 1000


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)
    if isinstance(value, str) and value:
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
    return None


def read_node_usage(batch: BatchClient, pool_id: str) -> list[NodeUsage]:
    """Each node now in the pool: dedicated or not, and when it was allocated (none when the pool is gone)."""
    nodes: list[NodeUsage] = []
    with translated(f"listing the nodes of pool/{pool_id}"):
        try:
            for node in batch.list_nodes(
                pool_id, select=["id", "isDedicated", "allocationTime"], max_results=PAGE_SIZE
            ):
                data = node.as_dict()
                allocated = _moment(data.get("allocationTime"))
                if allocated is not None:
                    nodes.append(NodeUsage(bool(data.get("isDedicated", True)), allocated))
        except ResourceNotFoundError:
            return []
    return nodes


def usage_report(clients: Clients, workload: Workload) -> list[str]:
    """The node-hours line of ``status`` and ``wait`` (the price file from ``$BATCHRUN_PRICE_FILE``)."""
    from batchrun.cost.report import price_file_from, usage_lines

    if workload.pool is None:
        return []
    nodes = read_node_usage(clients.batch, workload.pool.id)
    return usage_lines(workload, clients.target, nodes, price_file_from(None))


def usage_document(clients: Clients, workload: Workload) -> dict[str, Any] | None:
    """:func:`usage_report` as data, for ``status -o json``."""
    from batchrun.cost.report import price_file_from, usage_data

    if workload.pool is None:
        return None
    nodes = read_node_usage(clients.batch, workload.pool.id)
    return usage_data(workload, clients.target, nodes, price_file_from(None))
