"""Cost lines for ``plan`` (the price per hour of the manifest's pool) and ``status``/``wait`` (node-hours).

Glue between a :class:`~batchrun.target.Target` (which region), the manifest's pool (VM size, node counts),
:func:`batchrun.cost.lookup.find_price` and :mod:`batchrun.cost.estimate`. The region of an Azure target is
read from its Batch endpoint (``https://<account>.<region>.batch.azure.com``).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from batchrun.cost.estimate import NodeUsage, node_hours, pool_shape, rate_line, usage_json, usage_line
from batchrun.cost.lookup import PRICE_FILE_ENV, HttpGet, PriceQuery, find_price, urllib_get
from batchrun.cost.prices import VmPrice
from batchrun.model import Workload
from batchrun.target import Target


def target_region(target: Target) -> tuple[str | None, str]:
    """(region, "") for an Azure target whose endpoint names it; (None, why) otherwise."""
    if target.kind == "local":
        return None, ""
    host = (urlparse(target.batch_url).hostname or "").lower()
    parts = host.split(".")
    if len(parts) >= 4 and parts[2] == "batch" and parts[1]:
        return parts[1], ""
    return None, f"the Batch endpoint {host or target.batch_url} does not name its region"


def price_file_from(option: Path | None, environ: dict[str, str] | None = None) -> Path | None:
    """``--price-file``, else ``$BATCHRUN_PRICE_FILE``."""
    env = os.environ if environ is None else environ
    value = env.get(PRICE_FILE_ENV)
    return option or (Path(value) if value else None)


def _price(
    workload: Workload, target: Target, price_file: Path | None, http_get: HttpGet, cache: Path | None
) -> tuple[VmPrice | None, str]:
    assert workload.pool is not None
    shape = pool_shape(workload.pool.id, workload.pool.properties)
    region, why = target_region(target)
    if why and price_file is None:
        return None, why
    return find_price(PriceQuery(shape.vm_size, region, shape.windows), price_file, http_get, cache)


def plan_cost_lines(
    workload: Workload,
    target: Target,
    price_file: Path | None,
    http_get: HttpGet = urllib_get,
    cache: Path | None = None,
) -> list[str]:
    """``Cost: pool/p: ... = 0.192 USD/hour (...)`` for the manifest's pool (nothing without a pool)."""
    if workload.pool is None:
        return []
    price, why = _price(workload, target, price_file, http_get, cache)
    return ["Cost: " + rate_line(pool_shape(workload.pool.id, workload.pool.properties), price, why)]


def with_cost(plan_text: str, cost: list[str]) -> str:
    """The text plan with the cost lines before its last line (the summary stays last)."""
    if not cost:
        return plan_text
    body, _, summary = plan_text.rpartition("\n")
    return "\n".join([body.rstrip("\n"), *cost, "", summary]).lstrip("\n")


def usage_lines(
    workload: Workload,
    target: Target,
    nodes: Iterable[NodeUsage],
    price_file: Path | None,
    now: datetime | None = None,
    http_get: HttpGet = urllib_get,
    cache: Path | None = None,
) -> list[str]:
    """Node-hours so far of the manifest's pool, with their cost when there is a price."""
    if workload.pool is None:
        return []
    price, why = _price(workload, target, price_file, http_get, cache)
    hours = node_hours(nodes, now or datetime.now(timezone.utc))
    return [usage_line(pool_shape(workload.pool.id, workload.pool.properties), hours, price, why)]


def usage_data(
    workload: Workload,
    target: Target,
    nodes: Iterable[NodeUsage],
    price_file: Path | None,
    now: datetime | None = None,
    http_get: HttpGet = urllib_get,
    cache: Path | None = None,
) -> dict[str, Any] | None:
    """:func:`usage_lines` as data, for ``status -o json`` (None without a pool)."""
    if workload.pool is None:
        return None
    price, why = _price(workload, target, price_file, http_get, cache)
    hours = node_hours(nodes, now or datetime.now(timezone.utc))
    return usage_json(pool_shape(workload.pool.id, workload.pool.properties), hours, price, why)
