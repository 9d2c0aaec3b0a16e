"""What pool, job, task and node routes share: lookup, the write guard, list pages and single reads."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from starlette.responses import Response

from batchrun.emulator import odata
from batchrun.emulator.api.base import (
    Api,
    Call,
    check_conditions,
    json_response,
    resource_headers,
    with_metadata,
)
from batchrun.emulator.errors import being_deleted, not_found
from batchrun.emulator.model import Body, find_by_id

Rows = Callable[[str | None], Iterator[tuple[str, Body]]]

# Fields Batch computes on every job and task; a PUT body may carry them back, as the SDK sends what it read.
COMPUTED_KEYS = (
    "odata.metadata",
    "url",
    "eTag",
    "lastModified",
    "creationTime",
    "state",
    "stateTransitionTime",
    "previousState",
    "previousStateTransitionTime",
)


def lookup(items: Mapping[str, Body], kind: str, resource_id: str) -> Body:
    """The pool/job with this id (compared without case), or Batch's 404 for the kind."""
    found = find_by_id(items, resource_id)
    if found is None:
        raise not_found(kind, resource_id)
    return found


def writable(call: Call, resource: Body, kind: str) -> Body:
    """A resource a write may change: its conditional headers hold and it is not being deleted."""
    check_conditions(call, resource, read=False)
    if resource["state"] == "deleting":
        raise being_deleted(kind, resource["id"])
    return resource


def rows_in_id_order(items: Mapping[str, Body]) -> Rows:
    """``(id, body)`` pairs after a ``$skiptoken`` marker, in id order (lists are ordered by id)."""

    def after(marker: str | None) -> Iterator[tuple[str, Body]]:
        return iter(sorted((key, body) for key, body in items.items() if marker is None or key > marker))

    return after


def list_page(
    api: Api, call: Call, path: str, fields: tuple[str, ...], rows: Rows, render: Callable[[Body], Body]
) -> Response:
    """One page of a list: ``$filter`` over ``fields``, ``$select``, ``maxresults``, and the next link."""
    predicate = odata.parse_filter(call.option("$filter"), fields)
    select = odata.parse_select(call.option("$select"))
    limit = odata.parse_max_results(call.option("maxresults"))
    with api.model.lock:
        page = odata.paginate(rows(call.option("$skiptoken")), predicate, limit)
        values = [odata.apply_select(render(item), select) for item in page.items]
    result = with_metadata(call.base_url, path.rsplit("/", 1)[-1], {"value": values})
    if page.next_marker is not None:
        result["odata.nextLink"] = odata.next_link(call.base_url, path, call.query, page.next_marker)
    return json_response(result)


def read_one(
    api: Api, call: Call, find: Callable[[], Body], render: Callable[[Body], Body], url: Callable[[Body], str]
) -> Response:
    """A GET of one resource: conditional headers (read rules), ``$select``, ETag and Last-Modified."""
    select = odata.parse_select(call.option("$select"))
    with api.model.lock:
        resource = find()
        check_conditions(call, resource, read=True)
        body = odata.apply_select(render(resource), select)
        address = url(resource)
        headers = resource_headers(resource, address)
    kind = address.rstrip("/").split("/")[-2]
    return json_response(with_metadata(call.base_url, f"{kind}/@Element", body), headers=headers)
