"""What every route shares: authentication, request accounting, conditional headers, JSON I/O, validation."""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import msgspec
from msgspec import field
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from batchrun.emulator import auth
from batchrun.emulator.api.request_body import parse_body
from batchrun.emulator.config import EmulatorConfig
from batchrun.emulator.errors import (
    BatchApiError,
    condition_not_met,
    invalid_query,
    invalid_value,
    missing_property,
    unsupported_property,
)
from batchrun.emulator.model import Body, Model, find_by_id
from batchrun.emulator.store import StoreError, encode
from batchrun.emulator.timefmt import parse_http_date, parse_iso, rfc1123

if TYPE_CHECKING:
    from batchrun.emulator.scheduler.core import Scheduler

JSON_TYPE = "application/json;odata=minimalmetadata"
# The versions the azure-batch SDKs since 11.0 send (read from each release's ``_configuration.py``):
# 11.0.0, 12.0.0, 13.0.0, 14.0.0, 14.1.0, 14.2.0, 15.0.0b*, 15.x; the az CLI bundles one of these.
SUPPORTED_API_VERSIONS = frozenset(
    {
        "2025-06-01",
        "2024-07-01.20.0",
        "2024-02-01.19.0",
        "2023-11-01.18.0",
        "2023-05-01.17.0",
        "2022-10-01.16.0",
        "2022-01-01.15.0",
        "2021-06-01.14.0",
    }
)
ID_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_BODY_BYTES = 1024 * 1024
CONDITIONAL_HEADERS = ("if-match", "if-none-match", "if-modified-since", "if-unmodified-since")


class RequestAccounting(msgspec.Struct):
    """Counts of authenticated requests, by templated route (``GET /jobs/{jobId}``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    total: int = 0
    writes: int = 0
    by_route: Counter[str] = field(default_factory=Counter)

    def record(self, method: str, template: str) -> None:
        with self.lock:
            self.total += 1
            if method not in ("GET", "HEAD"):
                self.writes += 1
            self.by_route[f"{method} {template}"] += 1

    def snapshot(self) -> dict[str, Any]:
        with self.lock:
            return {
                "total": self.total,
                "writes": self.writes,
                "by_route": dict(sorted(self.by_route.items())),
            }

    def reset(self) -> None:
        with self.lock:
            self.total = 0
            self.writes = 0
            self.by_route.clear()


class Api(msgspec.Struct):
    """Everything a handler may use; passed explicitly, no globals."""

    config: EmulatorConfig
    model: Model
    scheduler: Scheduler
    accounting: RequestAccounting


class Call(msgspec.Struct):
    method: str
    params: dict[str, str]
    query: dict[str, str]
    headers: Mapping[str, str]
    body: Any
    raw_body: bytes
    base_url: str

    def option(self, name: str) -> str | None:
        return self.query.get(name)


Handler = Callable[[Api, Call], Response]


def with_metadata(base_url: str, fragment: str, body: dict[str, Any]) -> dict[str, Any]:
    """``body`` led by Batch's ``odata.metadata`` link (``$metadata#pools/@Element``, ``$metadata#jobs``)."""
    return {"odata.metadata": f"{base_url}/$metadata#{fragment}", **body}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    """``body`` as compact JSON, written as the store writes it (:func:`batchrun.emulator.store.encode`)."""
    return Response(encode(body), status_code=status, media_type=JSON_TYPE, headers=headers)


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, headers=headers)


def resource_headers(body: Body, url: str | None = None) -> dict[str, str]:
    headers = {"ETag": body["eTag"], "Last-Modified": rfc1123(body["lastModified"])}
    if url is not None:
        headers["DataServiceId"] = url
    return headers


def check_conditions(call: Call, body: Body, read: bool) -> None:
    """If-Match / If-None-Match (quotes stripped) and If-(Un)Modified-Since against a resource's ETag.

    Batch's rules ("Specifying conditional headers", REST docs): If-None-Match wins over If-Modified-Since,
    If-Match over If-Unmodified-Since; any other combination of conditional headers is a 400.
    """
    present = {name for name in CONDITIONAL_HEADERS if call.headers.get(name) is not None}
    if present in ({"if-none-match", "if-modified-since"}, {"if-match", "if-unmodified-since"}):
        present -= {"if-modified-since", "if-unmodified-since"}
    elif len(present) > 1:
        raise BatchApiError(
            400,
            "MultipleConditionHeadersNotSupported",
            "Multiple condition headers are not supported: send one of If-Match, If-None-Match, "
            "If-Modified-Since, If-Unmodified-Since (or If-Match with If-Unmodified-Since, "
            "If-None-Match with If-Modified-Since).",
            {"HeaderNames": ", ".join(sorted(present))},
        )
    etag = body.get("eTag", "")
    if_match = call.headers.get("if-match")
    if if_match is not None:
        wanted = {value.strip().strip('"') for value in if_match.split(",")}
        if "*" not in wanted and etag not in wanted:
            raise condition_not_met(read=False)
    if_none_match = call.headers.get("if-none-match")
    if if_none_match is not None:
        unwanted = {value.strip().strip('"') for value in if_none_match.split(",")}
        if "*" in unwanted or etag in unwanted:
            raise condition_not_met(read=read)
    modified = parse_iso(body["lastModified"]).replace(microsecond=0) if "lastModified" in body else None
    since = call.headers.get("if-modified-since")
    if since and modified is not None and "if-modified-since" in present:
        moment = parse_http_date(since)
        if moment is not None and modified <= moment:
            raise condition_not_met(read=read)
    unmodified = call.headers.get("if-unmodified-since")
    if unmodified and modified is not None and "if-unmodified-since" in present:
        moment = parse_http_date(unmodified)
        if moment is not None and modified > moment:
            raise condition_not_met(read=False)


# ---- body validation
def require_object(value: Any, name: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_value(name, value, f"'{name}' must be a JSON object")
    return value


def check_keys(body: Mapping[str, Any], allowed: Iterable[str], prefix: str = "") -> None:
    if not body:
        return
    allowed_set = allowed if isinstance(allowed, frozenset) else frozenset(allowed)
    for key in body:
        if key not in allowed_set:
            raise unsupported_property(prefix + key)


def _coerced(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...]) -> Any:
    """The value, with an integer or boolean written as a JSON string turned into its JSON type (and so
    stored): Batch's OData reader converts strings to the property's primitive type, and the az CLI sends
    every number as a string (``az batch pool create --target-dedicated-nodes 1`` → ``"1"``)."""
    value = body[name]
    if not isinstance(value, str) or isinstance(kind, tuple):
        return value
    text = value.strip()
    converted: Any = value
    if kind is int and re.fullmatch(r"-?[0-9]{1,10}", text):
        converted = int(text)
    elif kind is bool and text.lower() in ("true", "false"):
        converted = text.lower() == "true"
    if converted is not value and isinstance(body, dict):
        body[name] = converted
    return converted


def require(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...] = str, prefix: str = "") -> Any:
    if name not in body or body[name] is None:
        raise missing_property(prefix + name)
    return _checked(_coerced(body, name, kind), kind, prefix + name)


def optional(body: Mapping[str, Any], name: str, kind: type | tuple[type, ...], prefix: str = "") -> Any:
    if body.get(name) is None:
        return None
    return _checked(_coerced(body, name, kind), kind, prefix + name)


# Batch's widest integer type is Int64: a request's integer past it fits no property (and orjson, which reads
# the store, would read it back as a float).
_INT64 = range(-(2**63), 2**63)


def _checked(value: Any, kind: type | tuple[type, ...], name: str) -> Any:
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise invalid_value(name, value, f"'{name}' has the wrong type")
    if kind is int and value not in _INT64:
        raise invalid_value(name, value, f"'{name}' is out of range: Batch's integers are at most 64 bits")
    return value


def check_id(value: str, name: str = "id") -> str:
    if not ID_PATTERN.match(value):
        raise invalid_value(
            name, value, "ids contain only letters, digits, hyphens and underscores, at most 64 characters"
        )
    return value


def check_enum(body: Mapping[str, Any], name: str, allowed: Iterable[str], prefix: str = "") -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or value not in set(allowed):
        raise invalid_value(prefix + name, value, f"'{prefix + name}' must be one of {', '.join(allowed)}")
    return str(value)


def check_int_range(body: Mapping[str, Any], name: str, low: int, high: int, prefix: str = "") -> int | None:
    """An optional integer in ``[low, high]`` (one written as a JSON string included, see ``_coerced``)."""
    value = optional(body, name, int, prefix)
    if value is not None and not low <= value <= high:
        raise invalid_value(prefix + name, value, f"'{prefix + name}' must be between {low} and {high}")
    return None if value is None else int(value)


# ---- routing
def canonical_ids(model: Model, params: dict[str, str]) -> dict[str, str]:
    """Path ids in their stored spelling: Batch ids are case-preserving but compared without case."""
    with model.lock:
        if "poolId" in params:
            pool = find_by_id(model.pools, params["poolId"])
            if pool is not None:
                params["poolId"] = pool["id"]
        if "jobId" in params:
            job = find_by_id(model.jobs, params["jobId"])
            if job is not None:
                params["jobId"] = job["id"]
                job_tasks = model.tasks.get(job["id"])
                task_id = job_tasks.known_id(params["taskId"]) if job_tasks and "taskId" in params else None
                if task_id is not None:
                    params["taskId"] = task_id
    return params


def durably(api: Api, handler: Handler, call: Call) -> Response:
    """Run a write handler in one transaction, answering only once it is committed.

    If the database refuses the commit (a full disk), nothing of the request is kept: memory is read back
    from the database, so what clients see equals what a restart would show, and the client gets a 500.
    """
    try:
        with api.model.lock, api.model.store.transaction():
            return handler(api, call)
    except StoreError as error:
        api.scheduler.resync()
        raise BatchApiError(
            500,
            "InternalError",
            f"The local Batch emulator could not save this change ({error}); nothing was changed. "
            "Free disk space where the emulator keeps its state, then retry.",
        ) from None


def endpoint(
    api: Api, method: str, template: str, handler: Handler, plane: str = "data", durable: bool = True
) -> Route:
    """A Starlette route running ``handler`` after authentication, with Batch-shaped errors.

    Writes (any method but GET and HEAD) run in one transaction, unless ``durable`` is False (a write that
    changes no stored state and waits on something slow, such as an upload to storage).
    """
    starlette_path = template.replace("{filePath}", "{filePath:path}")

    async def run(request: Request) -> Response:
        head = request.method == "HEAD"
        try:
            headers = request.headers
            raw_path = request.scope.get("raw_path", b"").decode("latin-1") or request.url.path
            raw_path = raw_path.split("?", 1)[0]
            query_string = request.scope.get("query_string", b"").decode("latin-1")
            auth.check_request(
                request.method,
                headers,
                raw_path,
                query_string,
                api.config.account_name,
                api.config.account_key_bytes,
                api.config.token,
            )
            if plane != "emulator":  # reading the counters must not change them
                api.accounting.record(request.method, template)
            pairs = request.query_params.multi_items()
            query = dict(pairs)
            if len(query) != len(pairs):
                repeated = sorted({key for key, _ in pairs if sum(1 for k, _ in pairs if k == key) > 1})
                # The signature covers one value per name: a repeated one could be signed under one value
                # and served under another.
                raise invalid_query(repeated[0], "", "a query parameter may be given only once")
            if plane == "data":
                version = query.get("api-version")
                if version is None:
                    raise BatchApiError(
                        400,
                        "MissingRequiredQueryParameter",
                        "A query parameter that's mandatory for this request is not specified.",
                        {"QueryParameterName": "api-version"},
                    )
                if version not in SUPPORTED_API_VERSIONS:
                    raise invalid_query(
                        "api-version",
                        version,
                        f"supported versions: {', '.join(sorted(SUPPORTED_API_VERSIONS))}",
                    )
            raw_body = await request.body()
            if len(raw_body) > MAX_BODY_BYTES:
                raise BatchApiError(
                    413,
                    "RequestBodyTooLarge",
                    "The request body is too large and exceeds the maximum permissible limit.",
                    {"MaxLimit": str(MAX_BODY_BYTES)},
                )
            body: Any = parse_body(raw_body) if raw_body.strip() else None
            call = Call(
                request.method,
                canonical_ids(api.model, dict(request.path_params))
                if plane == "data"
                else dict(request.path_params),
                query,
                headers,
                body,
                raw_body,
                str(request.base_url).rstrip("/"),
            )
            # Off the event loop: handlers take the model lock and read files.
            if durable and request.method not in ("GET", "HEAD"):
                response = await run_in_threadpool(durably, api, handler, call)
            else:
                response = await run_in_threadpool(handler, api, call)
            if response.status_code == 201 and "DataServiceId" in response.headers:
                response.headers["Location"] = response.headers["DataServiceId"]
        except BatchApiError as error:
            if plane == "management":
                return Response(
                    json.dumps({"error": {"code": error.code, "message": error.message}}),
                    status_code=error.status,
                    media_type="application/json",
                )
            response = error.response(head=head, base_url=str(request.base_url).rstrip("/"))
        request_id = str(uuid.uuid4())
        response.headers["request-id"] = request_id
        client_request_id = request.headers.get("client-request-id")
        if client_request_id:
            response.headers["client-request-id"] = client_request_id
        return response

    return Route(starlette_path, run, methods=[method])
