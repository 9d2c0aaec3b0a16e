"""Batch's JSON read directly through the SDK's pipeline (auth, retries, error mapping), without its models.

Listing 100,000 tasks through the SDK builds a model per task and then a dict back from it; the plan needs a
few fields of each. Here pages are plain JSON from the same client: the SDK's authentication and retry
policies still apply, and its error policy still raises ``ResourceNotFoundError`` and friends.
"""

from __future__ import annotations

import json
import queue
import threading
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from azure.batch import BatchClient
from azure.core.pipeline.policies import ContentDecodePolicy
from azure.core.rest import HttpRequest

from batchrun.errors import TargetError

PAGE_SIZE = 1000
PAGES_AHEAD = 2  # pages read ahead of the caller, at most (memory: 2 x 1,000 tasks)


def metadata_of(items: Any) -> dict[str, str]:
    """A Batch resource's ``metadata`` list (REST JSON) as a mapping; anything else is no metadata."""
    return {str(i.get("name")): str(i.get("value", "")) for i in items or () if isinstance(i, Mapping)}


def _answer(batch: BatchClient, request: HttpRequest, **options: Any) -> Any:
    """The JSON answer to ``request`` (None when it has no body); errors raise as the SDK's do.

    The client's pipeline parses every answer already (its ``ContentDecodePolicy``, for the SDK's models):
    its parse is taken instead of parsing the body a second time, which was a third of a plan's CPU per
    page of 1,000 tasks."""
    piped: Any = batch.send_request(request, _return_pipeline_response=True, **options)  # a PipelineResponse
    response = piped.http_response
    response.raise_for_status()
    parsed = piped.context.get(ContentDecodePolicy.CONTEXT_NAME)
    if isinstance(parsed, (dict, list)):
        return parsed
    return response.json() if response.content else None  # not parsed as JSON (another content type)


def _object(answer: Any, path: str) -> dict[str, Any]:
    """``answer`` when it is a JSON object: an empty page read as no items would make a plan add every task
    again."""
    if not isinstance(answer, dict):
        raise TargetError(
            f"Batch answered {path} without a JSON object ({type(answer).__name__}); run again, and check "
            "that the target's URL is the Batch account's."
        )
    return answer


def list_json(
    batch: BatchClient,
    path: str,
    params: Mapping[str, str] | None = None,
    page_size: int = PAGE_SIZE,
    stopped: Callable[[], bool] | None = None,
) -> Generator[dict[str, Any], None, None]:
    """Every item of a Batch list operation (``/jobs/{id}/tasks``, ``/pools`` ...), following next links;
    once ``stopped()`` says so, no further page is asked for.

    After the first page, one thread asks for each next page as soon as the page before has come, while the
    caller works through the items of earlier ones (at most ``PAGES_AHEAD`` pages wait for it): the service
    makes the pages back to back, as a plain loop would, and a 100,000-task listing is 100 pages."""
    query = {"api-version": str(batch._config.api_version), "maxresults": str(page_size), **(params or {})}

    def fetch(link: str) -> dict[str, Any]:
        request = HttpRequest("GET", path, params=query) if not link else HttpRequest("GET", link)
        return _object(_answer(batch, request), path)

    def more(page: dict[str, Any]) -> str:
        link = str(page.get("odata.nextLink") or "")
        return link if link and not (stopped is not None and stopped()) else ""

    if stopped is not None and stopped():
        return
    first = fetch("")  # most lists are one page
    link = more(first)
    if not link:
        yield from first.get("value") or ()
        return
    pages: queue.Queue[dict[str, Any] | BaseException | None] = queue.Queue(PAGES_AHEAD)
    closed = threading.Event()

    def offer(item: dict[str, Any] | BaseException | None) -> None:
        while not closed.is_set():  # a caller that stopped reading takes no more
            try:
                pages.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def read_ahead(link: str) -> None:
        try:
            while link and not closed.is_set():
                page = fetch(link)
                offer(page)
                link = more(page)
        except BaseException as error:  # raised to the caller, in its thread
            offer(error)
            return
        offer(None)

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="batchrun-page") as ahead:
        ahead.submit(read_ahead, link)
        try:
            yield from first.get("value") or ()
            while (page := pages.get()) is not None:
                if isinstance(page, BaseException):
                    raise page
                yield from page.get("value") or ()
        finally:
            closed.set()


def send_json(
    batch: BatchClient,
    method: str,
    path: str,
    body: Mapping[str, Any],
    sending: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """Send a JSON body to a Batch operation and return its JSON answer, ``{}`` when it has none (errors
    raise as the SDK's do). ``sending`` is called when the request is signed and about to be sent, at each
    attempt (the pipeline's ``raw_request_hook``)."""
    request = HttpRequest(
        method,
        path,
        params={"api-version": str(batch._config.api_version)},
        headers={"Content-Type": "application/json; odata=minimalmetadata"},
        content=json.dumps(body, separators=(",", ":")),
    )
    hook = {} if sending is None else {"raw_request_hook": lambda _request: sending()}
    answer = _answer(batch, request, **hook)
    return {} if answer is None else _object(answer, path)


def post_json(
    batch: BatchClient, path: str, body: Mapping[str, Any], sending: Callable[[], None] | None = None
) -> dict[str, Any]:
    """POST a JSON body to a Batch operation and return its JSON answer (errors raise as the SDK's do;
    ``sending``: see :func:`send_json`)."""
    return send_json(batch, "POST", path, body, sending)


def get_json(batch: BatchClient, path: str) -> dict[str, Any]:
    """GET one Batch resource as JSON (a missing one raises ``ResourceNotFoundError``)."""
    request = HttpRequest("GET", path, params={"api-version": str(batch._config.api_version)})
    return _object(_answer(batch, request), path)
