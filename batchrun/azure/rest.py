"""Batch's JSON read directly through the SDK's pipeline (auth, retries, error mapping), without its models.

Listing 100,000 tasks through the SDK builds a model per task and then a dict back from it; the plan needs a
few fields of each. Here pages are plain JSON from the same client: the SDK's authentication and retry
policies still apply, and its error policy still raises ``ResourceNotFoundError`` and friends.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Generator, Mapping
from typing import Any

from azure.batch import BatchClient
from azure.core.pipeline.policies import ContentDecodePolicy
from azure.core.rest import HttpRequest

from batchrun.azure.pages import PagesAhead
from batchrun.errors import TargetError

PAGE_SIZE = 1000


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

    Each next page is asked for as soon as the body of the page before has come, before it is parsed, on
    other threads, while the caller works through the items of earlier ones (at most ``PAGES_AHEAD`` pages
    wait for it; see :mod:`batchrun.azure.pages`): a 100,000-task listing is 100 pages."""
    query = {"api-version": str(batch._config.api_version), "maxresults": str(page_size), **(params or {})}

    def fetch(link: str, early: Callable[[bytes], None], sending: Callable[[], None]) -> dict[str, Any]:
        request = HttpRequest("GET", path, params=query) if not link else HttpRequest("GET", link)

        def answered(piped: Any) -> None:  # each attempt's answer, its body read, before it is parsed
            if piped.http_response.status_code == 200:
                early(piped.http_response.body())

        hooks = {"raw_request_hook": lambda _request: sending(), "raw_response_hook": answered}
        return _object(_answer(batch, request, **hooks), path)

    def is_stopped() -> bool:
        return stopped is not None and stopped()

    if is_stopped():
        return
    ahead = PagesAhead(fetch, is_stopped)
    try:
        first, more = ahead.fetched("")  # most lists are one page
        items = first.get("value") or ()
        del first  # not held while later pages are read
        yield from items
        if more:
            for page in ahead.pages():
                yield from page.get("value") or ()
    finally:
        ahead.close()


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
