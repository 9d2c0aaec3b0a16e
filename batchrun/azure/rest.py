"""Batch's JSON read directly through the SDK's pipeline (auth, retries, error mapping), without its models.

Listing 100,000 tasks through the SDK builds a model per task and then a dict back from it; the plan needs a
few fields of each. Here pages are plain JSON from the same client: the SDK's authentication and retry
policies still apply, and its error policy still raises ``ResourceNotFoundError`` and friends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from azure.batch import BatchClient
from azure.core.rest import HttpRequest

PAGE_SIZE = 1000


def metadata_of(items: Any) -> dict[str, str]:
    """A Batch resource's ``metadata`` list (REST JSON) as a mapping; anything else is no metadata."""
    return {str(i.get("name")): str(i.get("value", "")) for i in items or () if isinstance(i, Mapping)}


def list_json(
    batch: BatchClient,
    path: str,
    params: Mapping[str, str] | None = None,
    page_size: int = PAGE_SIZE,
    stopped: Callable[[], bool] | None = None,
) -> Iterator[dict[str, Any]]:
    """Every item of a Batch list operation (``/jobs/{id}/tasks``, ``/pools`` ...), following next links;
    once ``stopped()`` says so, no further page is asked for.

    The next page is asked for as soon as a page arrives, while the caller works through its items: the
    service makes the next page while this one is read (a 100,000-task listing is 100 pages)."""
    query = {"api-version": str(batch._config.api_version), "maxresults": str(page_size), **(params or {})}

    def fetch(request: HttpRequest) -> dict[str, Any]:
        response = batch.send_request(request)
        response.raise_for_status()
        page: dict[str, Any] = response.json()
        return page

    if stopped is not None and stopped():
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchrun-page") as ahead:
        pending: Future[dict[str, Any]] | None = ahead.submit(fetch, HttpRequest("GET", path, params=query))
        while pending is not None:
            page = pending.result()
            link = str(page.get("odata.nextLink") or "")
            more = bool(link) and not (stopped is not None and stopped())
            pending = ahead.submit(fetch, HttpRequest("GET", link)) if more else None
            yield from page.get("value") or ()


def send_json(batch: BatchClient, method: str, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """Send a JSON body to a Batch operation and return its JSON answer, ``{}`` when it has none (errors
    raise as the SDK's do)."""
    request = HttpRequest(
        method,
        path,
        params={"api-version": str(batch._config.api_version)},
        headers={"Content-Type": "application/json; odata=minimalmetadata"},
        content=json.dumps(body, separators=(",", ":")),
    )
    response = batch.send_request(request)
    response.raise_for_status()
    if not response.content:
        return {}
    answer: dict[str, Any] = response.json()
    return answer


def post_json(batch: BatchClient, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
    """POST a JSON body to a Batch operation and return its JSON answer (errors raise as the SDK's do)."""
    return send_json(batch, "POST", path, body)


def get_json(batch: BatchClient, path: str) -> dict[str, Any]:
    """GET one Batch resource as JSON (a missing one raises ``ResourceNotFoundError``)."""
    request = HttpRequest("GET", path, params={"api-version": str(batch._config.api_version)})
    response = batch.send_request(request)
    response.raise_for_status()
    answer: dict[str, Any] = response.json()
    return answer
