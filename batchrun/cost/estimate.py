"""What a pool costs per hour and what its nodes have used so far, as lines to show. Pure.

Never a made-up number: without a price (``price`` None), the lines give node counts or node-hours and say
why there is no price. Prices are rounded for display only (4 significant decimals per hour).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

import msgspec

from batchrun.cost.prices import VmPrice


class PoolShape(msgspec.Struct, frozen=True):
    """What prices a pool: its VM size, operating system and node counts (None with autoscale)."""

    pool_id: str
    vm_size: str
    windows: bool
    dedicated: int | None
    low_priority: int | None


def pool_shape(pool_id: str, properties: Mapping[str, Any]) -> PoolShape:
    vm = properties.get("virtualMachineConfiguration") or {}
    image = vm.get("imageReference") or {}
    windows = (
        str(vm.get("nodeAgentSKUId", "")).lower().startswith("batch.node.windows")
        or "windows" in str(image.get("publisher", "") + " " + image.get("offer", "")).lower()
    )
    autoscale = bool(properties.get("enableAutoScale"))
    return PoolShape(
        pool_id,
        str(properties.get("vmSize", "")),
        windows,
        None if autoscale else int(properties.get("targetDedicatedNodes") or 0),
        None if autoscale else int(properties.get("targetLowPriorityNodes") or 0),
    )


def money(value: float) -> str:
    return f"{value:.4f}".rstrip("0").rstrip(".") if value else "0"


def _what(shape: PoolShape, price: VmPrice) -> str:
    where = f"in {price.region}" if price.region else "any region"  # the local target has none
    return f"{shape.vm_size} {'Windows' if shape.windows else 'Linux'} {where}; {price.source}"


def _low_name(price: VmPrice | None) -> str:
    return "spot" if price is None or price.low_priority_meter != "Low Priority" else "low-priority"


def rate_line(shape: PoolShape, price: VmPrice | None, why: str) -> str:
    """``pool/p: 2 dedicated x 0.096 + 1 spot x 0.0192 = 0.2112 USD/hour (...)``, or why there is no price."""
    head = f"pool/{shape.pool_id}"
    if price is None or price.dedicated is None:
        if shape.dedicated is None:
            return f"{head}: autoscale; no price ({why})"
        return (
            f"{head}: {shape.dedicated} dedicated + {shape.low_priority} low-priority node(s) of "
            f"{shape.vm_size}; no price ({why})"
        )
    unit = f"{price.currency}/hour"
    low = _low_name(price)
    if shape.dedicated is None or shape.low_priority is None:
        spot = f", {money(price.low_priority)} per {low} node" if price.low_priority is not None else ""
        return (
            f"{head}: autoscale, so the node count varies: {money(price.dedicated)} {unit} per dedicated "
            f"node{spot} ({_what(shape, price)})"
        )
    dedicated = shape.dedicated * price.dedicated
    if shape.low_priority and price.low_priority is None:
        return (
            f"{head}: {shape.dedicated} dedicated x {money(price.dedicated)} = {money(dedicated)} {unit}; "
            f"the {shape.low_priority} low-priority node(s) have no price (no Spot or Low Priority meter) "
            f"({_what(shape, price)})"
        )
    parts = [f"{shape.dedicated} dedicated x {money(price.dedicated)}"]
    total = dedicated
    if shape.low_priority:
        assert price.low_priority is not None
        parts.append(f"{shape.low_priority} {low} x {money(price.low_priority)}")
        total += shape.low_priority * price.low_priority
    return f"{head}: {' + '.join(parts)} = {money(total)} {unit} ({_what(shape, price)})"


class NodeUsage(msgspec.Struct, frozen=True):
    """One node now in the pool: dedicated or not, and when it was allocated."""

    dedicated: bool
    allocated: datetime


def node_hours(nodes: Iterable[NodeUsage], now: datetime) -> tuple[float, float]:
    """(dedicated, low-priority) node-hours of the nodes now in the pool, each since it was allocated."""
    dedicated = low = 0.0
    for node in nodes:
        hours = max((now - node.allocated).total_seconds(), 0.0) / 3600
        if node.dedicated:
            dedicated += hours
        else:
            low += hours
    return dedicated, low


def usage_line(shape: PoolShape, hours: tuple[float, float], price: VmPrice | None, why: str) -> str:
    """``pool/p node-hours so far: 1.50 dedicated, 0.00 low-priority ... = 0.144 USD (...)``, or why not."""
    dedicated, low = hours
    head = (
        f"pool/{shape.pool_id} node-hours so far: {dedicated:.2f} dedicated, {low:.2f} low-priority "
        "(nodes now in the pool, since each was allocated)"
    )
    if price is None or price.dedicated is None:
        return f"{head}; no cost shown: {why}"
    if low and price.low_priority is None:
        return (
            f"{head} = {money(dedicated * price.dedicated)} {price.currency} for the dedicated nodes; the "
            f"low-priority hours have no price ({_what(shape, price)})"
        )
    total = dedicated * price.dedicated + low * (price.low_priority or 0.0)
    return f"{head} = {money(total)} {price.currency} ({_what(shape, price)})"


def usage_json(
    shape: PoolShape, hours: tuple[float, float], price: VmPrice | None, why: str
) -> dict[str, Any]:
    """The node-hours of :func:`usage_line` as data: ``cost`` None, and ``noCost`` saying why, unless every
    hour has a price."""
    dedicated, low = hours
    reason: str | None = None
    if price is None or price.dedicated is None:
        reason = why or "no price for the dedicated nodes"
    elif low and price.low_priority is None:
        reason = f"the low-priority hours have no price ({price.source})"
    cost = None
    if reason is None and price is not None and price.dedicated is not None:
        amount = dedicated * price.dedicated + low * (price.low_priority or 0.0)
        cost = {"amount": round(amount, 6), "currency": price.currency, "source": price.source}
    return {
        "pool": shape.pool_id,
        "dedicatedNodeHours": round(dedicated, 4),
        "lowPriorityNodeHours": round(low, 4),
        "cost": cost,
        "noCost": reason,
    }
