"""VM prices per hour from the Azure Retail Prices API's items or from a user's price file. Pure.

The API (``https://prices.azure.com/api/retail/prices``) answers ``{"Items": [...], "NextPageLink": ...}``;
each item has ``serviceName``, ``armRegionName``, ``armSkuName``, ``skuName``, ``productName``, ``type``,
``unitOfMeasure``, ``retailPrice``, ``currencyCode``, ``effectiveStartDate`` and ``isPrimaryMeterRegion``. A
VM size has one pay-as-you-go meter per operating system and kind: ``skuName`` ``"D2s v3"`` (dedicated),
``"D2s v3 Spot"`` and ``"D2s v3 Low Priority"``; ``productName`` ends in ``Windows`` for Windows meters.
Only ``type == "Consumption"`` with ``unitOfMeasure == "1 Hour"`` counts (not reservations, savings plans or
Dev/Test rates).

Batch bills a pool's nodes as the VMs they are: dedicated nodes at the pay-as-you-go price, low-priority
nodes (``targetLowPriorityNodes``, Spot VMs in current Batch accounts) at the Spot price, or the Low Priority
price where a region has no Spot meter.

A price file (``--price-file``) is YAML or JSON, either a saved API answer (``{"Items": [...]}``) or::

    currency: USD
    date: 2026-11-30            # when these prices were taken (shown beside every cost)
    prices:
      - {vmSize: standard_d2s_v3, region: westeurope, dedicated: 0.096, spot: 0.0192}
      - {vmSize: standard_d2s_v3, region: westeurope, os: windows, dedicated: 0.188}

``region`` may be ``"*"`` (any region); ``os`` is ``linux`` (default) or ``windows``; ``spot`` is optional.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import msgspec

from batchrun.errors import ConfigurationError

HOUR = "1 Hour"
SERVICE = "Virtual Machines"


class VmPrice(msgspec.Struct, frozen=True):
    """What one node of a VM size costs per hour in a region, and where that number comes from."""

    vm_size: str
    region: str
    currency: str
    dedicated: float | None
    low_priority: float | None  # Spot, else Low Priority
    low_priority_meter: str  # "Spot" | "Low Priority" | ""
    source: str  # e.g. "Azure Retail Prices API, fetched 2026-12-01" or "price file p.yaml (2026-11-30)"


def _kind(sku_name: str) -> str:
    if sku_name.endswith(" Spot"):
        return "Spot"
    if sku_name.endswith(" Low Priority"):
        return "Low Priority"
    return "dedicated"


def _usable(item: Mapping[str, Any], vm_size: str, region: str, windows: bool) -> bool:
    return (
        str(item.get("serviceName", "")) == SERVICE
        and str(item.get("armSkuName", "")).lower() == vm_size.lower()
        and str(item.get("armRegionName", "")).lower() == region.lower()
        and str(item.get("type", "")) == "Consumption"
        and str(item.get("unitOfMeasure", "")) == HOUR
        and ("windows" in str(item.get("productName", "")).lower()) == windows
        and isinstance(item.get("retailPrice"), (int, float))
    )


def price_from_retail_items(
    items: Iterable[Mapping[str, Any]], vm_size: str, region: str, windows: bool, source: str
) -> VmPrice | None:
    """The price of ``vm_size`` in ``region`` from the API's items; None when no dedicated meter is there.

    Among several meters of one kind, the primary meter region wins, then the latest effective date."""
    best: dict[str, Mapping[str, Any]] = {}
    for item in items:
        if not _usable(item, vm_size, region, windows):
            continue
        kind = _kind(str(item.get("skuName", "")))
        rank = (bool(item.get("isPrimaryMeterRegion", True)), str(item.get("effectiveStartDate", "")))
        held = best.get(kind)
        if held is None or rank > (
            bool(held.get("isPrimaryMeterRegion", True)),
            str(held.get("effectiveStartDate", "")),
        ):
            best[kind] = item
    dedicated = best.get("dedicated")
    if dedicated is None:
        return None
    low = best.get("Spot") or best.get("Low Priority")
    return VmPrice(
        vm_size=vm_size,
        region=region,
        currency=str(dedicated.get("currencyCode", "USD")),
        dedicated=float(dedicated["retailPrice"]),
        low_priority=float(low["retailPrice"]) if low is not None else None,
        low_priority_meter=_kind(str(low.get("skuName", ""))) if low is not None else "",
        source=source,
    )


def _number(value: Any, where: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise ConfigurationError(f"{where}: {value!r} is not a price; write a number per hour, e.g. 0.096")
    return float(value)


def price_from_file(
    data: Any, vm_size: str, region: str, windows: bool, name: str
) -> tuple[VmPrice | None, str]:
    """The price of ``vm_size`` from a price file's parsed content, and a note when there is none."""
    if isinstance(data, Mapping) and isinstance(data.get("Items"), list):
        found = price_from_retail_items(data["Items"], vm_size, region, windows, f"price file {name}")
        return (
            found,
            "" if found else f"price file {name} has no {_os(windows)} price for {vm_size} in {region}",
        )
    if not isinstance(data, Mapping) or not isinstance(data.get("prices"), list):
        raise ConfigurationError(
            f"{name}: not a price file; write `currency`, `date` and a list `prices` of "
            "{vmSize, region, dedicated, spot}, or save an Azure Retail Prices API answer ({Items: [...]})"
        )
    currency = str(data.get("currency", "USD"))
    date = str(data.get("date", "")) or "undated"
    for index, entry in enumerate(data["prices"]):
        where = f"{name}: prices[{index}]"
        if not isinstance(entry, Mapping) or "vmSize" not in entry or "dedicated" not in entry:
            raise ConfigurationError(f"{where}: each price needs vmSize and dedicated (and region, spot, os)")
        if str(entry["vmSize"]).lower() != vm_size.lower():
            continue
        if str(entry.get("region", "*")).lower() not in ("*", region.lower()):
            continue
        if (str(entry.get("os", "linux")).lower() == "windows") != windows:
            continue
        spot = _number(entry.get("spot"), f"{where}.spot")
        return (
            VmPrice(
                vm_size,
                region,
                currency,
                _number(entry["dedicated"], f"{where}.dedicated"),
                spot,
                "Spot" if spot is not None else "",
                f"price file {name} ({date})",
            ),
            "",
        )
    return None, f"price file {name} has no {_os(windows)} price for {vm_size} in {region}"


def _os(windows: bool) -> str:
    return "Windows" if windows else "Linux"
