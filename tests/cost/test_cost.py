"""The cost line: prices from a recorded Retail Prices API answer (through the dated cache) or from a user's
price file, node-hours, and no number without a price."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from batchrun.cost.estimate import (
    NodeUsage,
    PoolShape,
    node_hours,
    pool_shape,
    rate_line,
    usage_json,
    usage_line,
)
from batchrun.cost.lookup import PriceQuery, PriceUnavailable, find_price, query_url
from batchrun.cost.prices import VmPrice, price_from_retail_items
from batchrun.cost.report import target_region, with_cost
from batchrun.errors import ConfigurationError
from batchrun.target import Target

FIXTURES = Path(__file__).parent / "fixtures"
PAGE1 = FIXTURES / "retail_prices_westeurope_standard_d2s_v3.page1.json"
PAGE2 = FIXTURES / "retail_prices_westeurope_standard_d2s_v3.page2.json"
NOW = datetime(2026, 12, 1, 12, 0, tzinfo=timezone.utc)
LINUX = PriceQuery("standard_d2s_v3", "westeurope", windows=False)
POOL = {
    "vmSize": "standard_d2s_v3",
    "virtualMachineConfiguration": {
        "imageReference": {"publisher": "canonical", "offer": "ubuntu-24_04-lts"},
        "nodeAgentSKUId": "batch.node.ubuntu 24.04",
    },
    "targetDedicatedNodes": 2,
    "targetLowPriorityNodes": 3,
}


class RecordedApi:
    """Serves the recorded pages by URL and counts the requests."""

    def __init__(self) -> None:
        self.urls: list[str] = []

    def __call__(self, url: str) -> bytes:
        self.urls.append(url)
        page = PAGE2 if "$skip=100" in url else PAGE1
        return page.read_bytes()


def unreachable(url: str) -> bytes:
    raise PriceUnavailable("Name or service not known")


def test_recorded_answer_gives_dedicated_and_spot_prices(tmp_path: Path) -> None:
    api = RecordedApi()
    price, why = find_price(LINUX, None, api, tmp_path, NOW)
    assert why == "" and price is not None
    # Primary meter (not the older non-primary one), Spot before Low Priority; not the Dev/Test rate or the
    # reservation, and not the Windows meter from the second page.
    assert (price.currency, price.dedicated, price.low_priority, price.low_priority_meter) == (
        "USD",
        0.115,
        0.0231,
        "Spot",
    )
    assert price.source == "Azure Retail Prices API, fetched 2026-12-01"
    assert len(api.urls) == 2 and api.urls[0] == query_url("westeurope", "standard_d2s_v3")
    assert api.urls[0] == (
        "https://prices.azure.com/api/retail/prices?$filter=serviceName%20eq%20'Virtual%20Machines'%20and%20"
        "armRegionName%20eq%20'westeurope'%20and%20armSkuName%20eq%20'standard_d2s_v3'"
    )
    windows, _ = find_price(
        PriceQuery("standard_d2s_v3", "westeurope", True), None, RecordedApi(), tmp_path / "w", NOW
    )
    assert windows is not None and windows.dedicated == 0.207 and windows.low_priority is None

    line = rate_line(pool_shape("p", POOL), price, why)
    assert line == (
        "pool/p: 2 dedicated x 0.115 + 3 spot x 0.0231 = 0.2993 USD/hour "
        "(standard_d2s_v3 Linux in westeurope; Azure Retail Prices API, fetched 2026-12-01)"
    )


def test_the_cache_keeps_prices_with_their_date(tmp_path: Path) -> None:
    find_price(LINUX, None, RecordedApi(), tmp_path, NOW)
    (cached,) = tmp_path.glob("*.json")
    assert json.loads(cached.read_text())["fetched"].startswith("2026-12-01")
    # Within a week: no request at all.
    price, _ = find_price(LINUX, None, unreachable, tmp_path, NOW + timedelta(days=6))
    assert price is not None and price.source == "Azure Retail Prices API, fetched 2026-12-01"
    # Older, and the API unreachable: the old answer with its date, and why.
    price, _ = find_price(LINUX, None, unreachable, tmp_path, NOW + timedelta(days=30))
    assert price is not None
    assert price.source == "Azure Retail Prices API, fetched 2026-12-01 (cached; the API is unreachable now)"
    # Older and reachable: asked again, dated again.
    price, _ = find_price(LINUX, None, RecordedApi(), tmp_path, NOW + timedelta(days=30))
    assert price is not None and price.source == "Azure Retail Prices API, fetched 2026-12-31"


def test_no_price_means_no_number(tmp_path: Path) -> None:
    price, why = find_price(LINUX, None, unreachable, tmp_path, NOW)
    assert price is None
    assert why.startswith("the Azure Retail Prices API could not be reached (Name or service not known)")
    line = rate_line(pool_shape("p", POOL), price, why)
    assert line.startswith("pool/p: 2 dedicated + 3 low-priority node(s) of standard_d2s_v3; no price (")
    assert "USD" not in line
    # A size the API does not list.
    price, why = find_price(
        PriceQuery("standard_zz9", "westeurope", False), None, RecordedApi(), tmp_path, NOW
    )
    assert price is None and "lists no Linux pay-as-you-go price for standard_zz9 in westeurope" in why
    # The local target.
    price, why = find_price(PriceQuery("standard_d2s_v3", None, False), None, unreachable, tmp_path, NOW)
    assert price is None and why.startswith("the local target has no Azure region")


def test_user_price_file(tmp_path: Path) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(
        "currency: EUR\n"
        "date: 2026-11-30\n"
        "prices:\n"
        "  - {vmSize: standard_d2s_v3, region: westeurope, dedicated: 0.1, spot: 0.02}\n"
        "  - {vmSize: standard_d2s_v3, region: '*', dedicated: 0.2}\n"
    )
    price, why = find_price(LINUX, prices, unreachable, tmp_path, NOW)
    assert price is not None and why == ""
    assert rate_line(pool_shape("p", POOL), price, why) == (
        f"pool/p: 2 dedicated x 0.1 + 3 spot x 0.02 = 0.26 EUR/hour "
        f"(standard_d2s_v3 Linux in westeurope; price file {prices} (2026-11-30))"
    )
    # Region '*' prices the local target too; no spot price means the low-priority nodes are not priced.
    local, _ = find_price(PriceQuery("standard_d2s_v3", None, False), prices, unreachable, tmp_path, NOW)
    assert local is not None and local.dedicated == 0.2
    line = rate_line(pool_shape("p", POOL), local, "")
    assert "2 dedicated x 0.2 = 0.4 EUR/hour; the 3 low-priority node(s) have no price" in line
    # A saved API answer works as a price file.
    saved = tmp_path / "saved.json"
    saved.write_text(PAGE1.read_text())
    price, _ = find_price(LINUX, saved, unreachable, tmp_path, NOW)
    assert price is not None and price.dedicated == 0.115
    # Windows is priced only by a Windows entry.
    none, why = find_price(
        PriceQuery("standard_d2s_v3", "westeurope", True), prices, unreachable, tmp_path, NOW
    )
    assert (
        none is None and why == f"price file {prices} has no Windows price for standard_d2s_v3 in westeurope"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("prices: {a: 1}", "not a price file"),
        ("prices:\n  - {vmSize: x}\n", "prices[0]: each price needs vmSize and dedicated"),
        (
            "prices:\n  - {vmSize: standard_d2s_v3, dedicated: cheap}\n",
            "prices[0].dedicated: 'cheap' is not a price",
        ),
        ("prices: [\n", "not YAML or JSON"),
    ],
)
def test_bad_price_files(tmp_path: Path, content: str, message: str) -> None:
    prices = tmp_path / "prices.yaml"
    prices.write_text(content)
    with pytest.raises(ConfigurationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        find_price(LINUX, prices, unreachable, tmp_path, NOW)
    with pytest.raises(ConfigurationError, match="cannot read the price file"):
        find_price(LINUX, tmp_path / "missing.yaml", unreachable, tmp_path, NOW)


def test_autoscale_and_windows_shapes() -> None:
    windows = pool_shape(
        "w",
        {
            "vmSize": "standard_d2s_v3",
            "enableAutoScale": True,
            "virtualMachineConfiguration": {"nodeAgentSKUId": "batch.node.windows amd64"},
        },
    )
    assert windows == PoolShape("w", "standard_d2s_v3", True, None, None)
    items = json.loads(PAGE2.read_text())["Items"]
    price = price_from_retail_items(items, "standard_d2s_v3", "westeurope", True, "recorded")
    assert rate_line(windows, price, "") == (
        "pool/w: autoscale, so the node count varies: 0.207 USD/hour per dedicated node "
        "(standard_d2s_v3 Windows in westeurope; recorded)"
    )


def test_node_hours_so_far() -> None:
    nodes = [
        NodeUsage(True, NOW - timedelta(hours=1, minutes=30)),
        NodeUsage(True, NOW - timedelta(minutes=30)),
        NodeUsage(False, NOW - timedelta(hours=2)),
    ]
    hours = node_hours(nodes, NOW)
    assert hours == (2.0, 2.0)
    shape = pool_shape("p", POOL)
    items = json.loads(PAGE1.read_text())["Items"]
    price = price_from_retail_items(items, "standard_d2s_v3", "westeurope", False, "recorded")
    assert usage_line(shape, hours, price, "") == (
        "pool/p node-hours so far: 2.00 dedicated, 2.00 low-priority (nodes now in the pool, since each was "
        "allocated) = 0.2762 USD (standard_d2s_v3 Linux in westeurope; recorded)"
    )
    assert usage_line(shape, hours, None, "the local target has no Azure region").endswith(
        "; no cost shown: the local target has no Azure region"
    )


def test_region_of_the_target() -> None:
    def target(kind: str, url: str) -> Target:
        return Target(kind, url, "a", None, "https://s.blob.core.windows.net", "s", None)  # type: ignore[arg-type]

    assert target_region(target("azure", "https://mybatch.westeurope.batch.azure.com")) == ("westeurope", "")
    assert target_region(target("local", "http://127.0.0.1:5000")) == (None, "")
    region, why = target_region(target("azure", "https://batch.example.com"))
    assert region is None and "does not name its region" in why


def test_cost_line_sits_above_the_summary() -> None:
    assert with_cost("  + pool/p will be created\n\nPlan: 1 to create.", ["Cost: c"]) == (
        "  + pool/p will be created\nCost: c\n\nPlan: 1 to create."
    )
    assert with_cost("\nNo changes.", ["Cost: c"]) == "Cost: c\n\nNo changes."
    assert with_cost("\nNo changes.", []) == "\nNo changes."


def test_node_hours_as_data() -> None:
    shape = pool_shape("p", POOL)
    items = json.loads(PAGE1.read_text())["Items"]
    price = price_from_retail_items(items, "standard_d2s_v3", "westeurope", False, "recorded")
    assert usage_json(shape, (2.0, 2.0), price, "") == {
        "pool": "p",
        "dedicatedNodeHours": 2.0,
        "lowPriorityNodeHours": 2.0,
        "cost": {"amount": 0.2762, "currency": "USD", "source": "recorded"},
        "noCost": None,
    }
    none = usage_json(shape, (1.5, 0.0), None, "the local target has no Azure region")
    assert none["cost"] is None and none["noCost"] == "the local target has no Azure region"
    no_spot = VmPrice("standard_d2s_v3", "westeurope", "USD", 0.1, None, "", "file")
    reason = usage_json(shape, (1.0, 1.0), no_spot, "")["noCost"]
    assert reason == "the low-priority hours have no price (file)"
