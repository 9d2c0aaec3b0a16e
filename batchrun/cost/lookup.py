"""Finding a VM price: a user's price file, else the Azure Retail Prices API through a dated cache.

The API is asked once per region and VM size
(``$filter=serviceName eq 'Virtual Machines' and armRegionName eq '<region>' and armSkuName eq '<size>'``,
following ``NextPageLink``); the usable items are kept in the user's cache folder
(``$XDG_CACHE_HOME/batchrun/prices``, else ``~/.cache/batchrun/prices``) with the date they were fetched, and
reused for :data:`CACHE_DAYS` days. When the API cannot be reached, an older cached answer is used and its
date shown; without one there is no price, and the reason says so. Network access goes through the
``http_get`` function passed in, so tests never touch the network.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

import msgspec
import yaml

from batchrun.cost.prices import SERVICE, VmPrice, price_from_file, price_from_retail_items
from batchrun.errors import ConfigurationError

API = "https://prices.azure.com/api/retail/prices"
CACHE_DAYS = 7
MAX_PAGES = 10
TIMEOUT_SECONDS = 10
PRICE_FILE_ENV = "BATCHRUN_PRICE_FILE"
HttpGet = Callable[[str], bytes]


class PriceUnavailable(Exception):
    """The API could not be asked (unreachable, refused, or an answer that is not its format)."""


def urllib_get(url: str) -> bytes:
    """The default ``http_get``: one HTTPS GET with a timeout."""
    from urllib.error import URLError
    from urllib.request import urlopen

    try:
        with urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            data: bytes = response.read()
            return data
    except (URLError, OSError, ValueError) as error:
        raise PriceUnavailable(str(getattr(error, "reason", error))) from error


def query_url(region: str, vm_size: str) -> str:
    condition = f"serviceName eq '{SERVICE}' and armRegionName eq '{region}' and armSkuName eq '{vm_size}'"
    query = urlencode({"$filter": condition}, quote_via=quote, safe="$'")  # spaces as %20, as the API's docs
    return f"{API}?{query}"


def fetch_items(region: str, vm_size: str, http_get: HttpGet) -> list[dict[str, Any]]:
    """Every item the API answers for the size in the region (all pages)."""
    url: str | None = query_url(region, vm_size)
    items: list[dict[str, Any]] = []
    for _ in range(MAX_PAGES):
        if not url:
            break
        try:
            page = json.loads(http_get(url))
        except ValueError as error:
            raise PriceUnavailable(f"the answer is not JSON ({error})") from error
        if not isinstance(page, dict) or not isinstance(page.get("Items"), list):
            raise PriceUnavailable("the answer has no Items list")
        items.extend(i for i in page["Items"] if isinstance(i, dict))
        next_link = page.get("NextPageLink")
        url = str(next_link) if next_link and str(next_link).startswith(API) else None
    return items


def cache_folder(environ: os._Environ[str] | dict[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "batchrun" / "prices"


def _cache_file(folder: Path, region: str, vm_size: str) -> Path:
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in f"{region}-{vm_size}".lower())
    return folder / f"{safe}.json"


def _read_cache(path: Path) -> tuple[datetime, list[dict[str, Any]]] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        fetched = datetime.fromisoformat(str(data["fetched"]))
        items = [i for i in data["items"] if isinstance(i, dict)]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return (fetched if fetched.tzinfo else fetched.replace(tzinfo=timezone.utc)), items


def _write_cache(path: Path, fetched: datetime, items: list[dict[str, Any]]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"fetched": fetched.isoformat(), "items": items}), encoding="utf-8")
        temporary.replace(path)
    except OSError:
        return  # a cache that cannot be written only means asking again next time


class PriceQuery(msgspec.Struct, frozen=True):
    vm_size: str
    region: str | None  # None: the local target, which has no Azure region
    windows: bool


def load_price_file(path: Path) -> Any:
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(
            f"cannot read the price file {path}: {error.strerror or error}; check the path given to "
            f"--price-file or {PRICE_FILE_ENV}"
        ) from error
    except yaml.YAMLError as error:
        raise ConfigurationError(
            f"{path}: not YAML or JSON ({error}); see docs/gitops.md for the format"
        ) from error


def find_price(
    query: PriceQuery,
    price_file: Path | None,
    http_get: HttpGet = urllib_get,
    cache: Path | None = None,
    now: datetime | None = None,
) -> tuple[VmPrice | None, str]:
    """The price for ``query`` and, when there is none, why (a sentence for the user)."""
    if price_file is not None:
        return price_from_file(
            load_price_file(price_file), query.vm_size, query.region or "", query.windows, str(price_file)
        )
    if query.region is None:
        return None, (
            "the local target has no Azure region, so no Azure price applies "
            f"(a price file with region '*' gives one: --price-file or {PRICE_FILE_ENV})"
        )
    moment = now or datetime.now(timezone.utc)
    path = _cache_file(cache or cache_folder(), query.region, query.vm_size)
    cached = _read_cache(path)
    if cached is not None and moment - cached[0] < timedelta(days=CACHE_DAYS):
        return _priced(query, cached[1], f"Azure Retail Prices API, fetched {cached[0]:%Y-%m-%d}")
    try:
        items = fetch_items(query.region, query.vm_size, http_get)
    except PriceUnavailable as error:
        if cached is not None:
            note = (
                f"Azure Retail Prices API, fetched {cached[0]:%Y-%m-%d} (cached; the API is unreachable now)"
            )
            return _priced(query, cached[1], note)
        return None, (
            f"the Azure Retail Prices API could not be reached ({error}) and no price is cached; "
            f"give a price file (--price-file or {PRICE_FILE_ENV})"
        )
    _write_cache(path, moment, items)
    return _priced(query, items, f"Azure Retail Prices API, fetched {moment:%Y-%m-%d}")


def _priced(query: PriceQuery, items: list[dict[str, Any]], source: str) -> tuple[VmPrice | None, str]:
    assert query.region is not None
    found = price_from_retail_items(items, query.vm_size, query.region, query.windows, source)
    if found is None:
        os_name = "Windows" if query.windows else "Linux"
        return (
            None,
            f"the Azure Retail Prices API lists no {os_name} pay-as-you-go price for {query.vm_size} "
            f"in {query.region}",
        )
    return found, ""
