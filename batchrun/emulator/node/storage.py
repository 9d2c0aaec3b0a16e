"""Blob clients for the node runtime: short retries (report a failure, never hang) and error mapping."""

from __future__ import annotations

from typing import Any

from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobClient, ContainerClient, ExponentialRetry

from batchrun.emulator.node.model import StorageAccess


def _client_options() -> dict[str, Any]:
    return {
        "retry_policy": ExponentialRetry(initial_backoff=1, increment_base=2, retry_total=2),
        "connection_timeout": 10,
        "read_timeout": 120,
    }


def container_from_url(url: str) -> ContainerClient:
    return ContainerClient.from_container_url(url, **_client_options())


def blob_from_url(url: str) -> BlobClient:
    return BlobClient.from_blob_url(url, **_client_options())


def container_in_account(storage: StorageAccess, container: str) -> ContainerClient:
    credential = {"account_name": storage.account_name, "account_key": storage.account_key}
    return ContainerClient(storage.blob_endpoint, container, credential=credential, **_client_options())


def download_error_code(error: Exception) -> str:
    """Batch's code for a failed resource file download."""
    if isinstance(error, ResourceNotFoundError):
        return "BlobNotFound"
    if isinstance(error, ClientAuthenticationError):
        return "BlobAccessDenied"
    if isinstance(error, HttpResponseError) and error.status_code in (401, 403):
        return "BlobAccessDenied"
    if isinstance(error, HttpResponseError) and error.status_code == 404:
        return "BlobNotFound"
    if isinstance(error, (ServiceRequestError, ServiceResponseError)) and "timed out" in str(error).lower():
        return "BlobDownloadTimedOut"
    return "BlobDownloadMiscError"


def error_summary(error: Exception) -> str:
    """One line about ``error``: the storage error code and status when there is one."""
    if isinstance(error, HttpResponseError):
        code = getattr(error, "error_code", None) or ""
        status = error.status_code or ""
        reason = error.reason or ""
        return " ".join(str(part) for part in (status, reason, code) if part) or type(error).__name__
    first_line = str(error).splitlines()[0] if str(error) else ""
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__
