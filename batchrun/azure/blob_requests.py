"""The blob requests of the apply lock and of the record of results, sent as plain HTTP through the storage
client's own pipeline.

Every apply that writes makes the lock's requests and reads the record, most of them before its first change
can leave. azure-storage-blob builds a client object and a generated operation for each call and turns each
answer's headers into models: 1.0-1.4 ms of CPU a request, where the same request through the same pipeline
costs about half that. The pipeline is the client's own (its ``_pipeline``, as long-standing as the
``_additional_pipeline_policies`` hook :mod:`batchrun.azure.clients` uses), so its authentication (shared key
or Entra ID), retries, headers and request log all apply.

Errors raise as the SDK's do: ``ResourceNotFoundError`` (404), ``ResourceExistsError`` (409),
``ResourceModifiedError`` (412), else ``HttpResponseError``, with the service's error code
(``x-ms-error-code``) as ``error_code`` and its message (first line) as the message.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import quote

from azure.core.exceptions import (
    HttpResponseError,
    ResourceExistsError,
    ResourceModifiedError,
    ResourceNotFoundError,
)
from azure.core.pipeline.transport import HttpRequest, HttpResponse
from azure.storage.blob import BlobServiceClient

_ERRORS: dict[int, type[HttpResponseError]] = {
    404: ResourceNotFoundError,
    409: ResourceExistsError,
    412: ResourceModifiedError,
}
_MESSAGE = re.compile(rb"<Message>([^<\r\n]*)")
_META = "x-ms-meta-"  # a metadata item's header: the prefix, then its name
LEASE_ACTIONS = ("acquire", "renew", "release", "break")


def _url(service: BlobServiceClient, path: str, query: str = "") -> str:
    """``path`` (quoted) under the account's endpoint, with ``query`` and any SAS the account URL carries, as
    the SDK's clients make their URLs."""
    endpoint, _, sas = service.primary_endpoint.partition("?")
    joined = "&".join(part for part in (query, sas) if part)
    return f"{endpoint.rstrip('/')}/{path}" + (f"?{joined}" if joined else "")


def blob_url(service: BlobServiceClient, container: str, name: str, query: str = "") -> str:
    """The blob's URL, quoted as the SDK quotes it, with ``query``."""
    return _url(service, f"{quote(container)}/{quote(name, safe='~/')}", query)


def _error(response: HttpResponse) -> HttpResponseError:
    code = response.headers.get("x-ms-error-code", "")
    found = _MESSAGE.search(response.body() or b"") if response.request.method != "HEAD" else None
    message = found[1].decode("utf-8", "replace") if found else (code or response.reason or "")
    error = _ERRORS.get(response.status_code, HttpResponseError)(message=message, response=response)
    # Read by batchrun.azure.failures.error_code, as the SDK's own errors carry it.
    error.error_code = code  # type: ignore[attr-defined]
    return error


def send(
    service: BlobServiceClient, method: str, url: str, headers: Mapping[str, str] | None = None
) -> HttpResponse:
    """``method`` on ``url`` through ``service``'s pipeline; its answer, or its error raised (see the
    module's docstring)."""
    request = HttpRequest(method, url)
    request.headers["x-ms-version"] = service.api_version
    if method in ("PUT", "POST"):
        request.headers["Content-Length"] = "0"
    if headers:
        request.headers.update(headers)
    response: HttpResponse = service._pipeline.run(request).http_response
    if response.status_code >= 400:
        raise _error(response)
    return response


def _meta(metadata: Mapping[str, str]) -> dict[str, str]:
    return {f"{_META}{name}": value for name, value in metadata.items()}


def create_empty_blob(
    service: BlobServiceClient, container: str, name: str, metadata: Mapping[str, str]
) -> str:
    """Make an empty block blob with ``metadata``, only if there is none by that name (a 409 otherwise; a 404
    when the container is missing); its ETag."""
    headers = {"x-ms-blob-type": "BlockBlob", "If-None-Match": "*", **_meta(metadata)}
    return str(send(service, "PUT", blob_url(service, container, name), headers).headers["ETag"])


def lease(
    service: BlobServiceClient,
    container: str,
    name: str,
    action: str,
    lease_id: str | None = None,
    *,
    seconds: int | None = None,
    if_match: str | None = None,
) -> None:
    """One lease action on the blob: ``acquire`` (``lease_id`` proposed, for ``seconds``), ``renew`` and
    ``release`` (of ``lease_id``), ``break`` (at once). ``if_match``: only while the blob's ETag is that
    (a 412 otherwise)."""
    if action not in LEASE_ACTIONS:
        raise ValueError(f"unknown lease action {action!r}")
    headers = {"x-ms-lease-action": action}
    if lease_id is not None:
        headers["x-ms-proposed-lease-id" if action == "acquire" else "x-ms-lease-id"] = lease_id
    if seconds is not None:
        headers["x-ms-lease-duration"] = str(seconds)
    if action == "break":
        headers["x-ms-lease-break-period"] = "0"
    if if_match is not None:
        headers["If-Match"] = if_match
    send(service, "PUT", blob_url(service, container, name, "comp=lease"), headers)


def blob_metadata(service: BlobServiceClient, container: str, name: str) -> dict[str, str]:
    """The blob's metadata (its properties read)."""
    headers = send(service, "HEAD", blob_url(service, container, name)).headers
    return {key[len(_META) :]: value for key, value in headers.items() if key.lower().startswith(_META)}


def set_blob_metadata(
    service: BlobServiceClient, container: str, name: str, metadata: Mapping[str, str], lease_id: str
) -> None:
    """Replace the blob's metadata under its lease ``lease_id``."""
    url = blob_url(service, container, name, "comp=metadata")
    send(service, "PUT", url, {"x-ms-lease-id": lease_id, **_meta(metadata)})


def delete_blob(service: BlobServiceClient, container: str, name: str, lease_id: str) -> None:
    """Delete the blob held under the lease ``lease_id``."""
    send(service, "DELETE", blob_url(service, container, name), {"x-ms-lease-id": lease_id})


def download_blob(service: BlobServiceClient, container: str, name: str) -> tuple[bytes, str]:
    """The blob's content and ETag."""
    response = send(service, "GET", blob_url(service, container, name))
    return response.body(), str(response.headers["ETag"])
