"""SDK exceptions -> batchrun errors, with the Batch error code and a redacted message."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from azure.core.exceptions import (
    AzureError,
    ClientAuthenticationError,
    HttpResponseError,
    ServiceRequestError,
    ServiceResponseError,
)

from batchrun.errors import AuthenticationError, BatchrunError, TargetError, TargetUnreachableError
from batchrun.plan.secrets import MASK, SECRET_KEYS
from batchrun.redact import redact


def error_code(error: BaseException) -> str:
    """The Batch/Storage error code of an SDK error ("" when none)."""
    code = getattr(error, "error_code", None)
    if code:
        return str(getattr(code, "value", code))  # azure-storage-blob gives an enum: its value is the code
    inner = getattr(error, "error", None)
    return str(getattr(inner, "code", "") or "")


def status_of(error: BaseException) -> int:
    return int(getattr(error, "status_code", 0) or 0)


def translate(error: AzureError, doing: str) -> BatchrunError:
    """A user-facing error for ``error`` raised while ``doing`` (e.g. "reading pool/p1")."""
    message = redact(
        str(getattr(error, "message", "") or error).splitlines()[0] if str(error) else type(error).__name__
    )
    if isinstance(error, ClientAuthenticationError) or status_of(error) in (401, 403):
        return AuthenticationError(
            f"{doing}: the target rejected batchrun's credentials ({message}). Check the account key or the "
            "Entra ID role assignments (docs/azure.md)."
        )
    if isinstance(error, ServiceRequestError):
        return TargetUnreachableError(
            f"{doing}: cannot reach the service ({message}). Check the endpoint and the network."
        )
    if isinstance(error, ServiceResponseError):
        return TargetUnreachableError(
            f"{doing}: the service stopped answering ({message}). Check that it is running (for the local "
            "target: `batchrun local status`) and run the command again."
        )
    if isinstance(error, HttpResponseError):
        code = error_code(error)
        message = _CODE_PREFIX.sub("", message, count=1)
        values = _values(error)
        if values:
            refused = values.get("PropertyName", "").rsplit(".", 1)[-1].split("[")[0]  # a.b[0].password
            if refused in SECRET_KEYS and "PropertyValue" in values:
                values["PropertyValue"] = MASK
            extra = "; ".join(f"{key}: {value}" for key, value in values.items())
        else:
            details = getattr(getattr(error, "error", None), "details", None) or []
            extra = "; ".join(f"{d.code}: {d.message}" for d in details if getattr(d, "code", None))
        suffix = f" ({redact(extra)})" if extra else ""
        hint = HINTS.get(code, "")
        text = f"{doing}: HTTP {status_of(error)} {code}: {message}{suffix}"
        if hint:
            text = text.rstrip(".") + f"; {hint}."
        return TargetError(text)
    return TargetError(f"{doing}: {message}")


_CODE_PREFIX = re.compile(r"^\([A-Za-z]+\) ")

# What to do about the Batch error codes a plan or apply can meet (codes: Batch REST error reference;
# bodies: the recordings in tests/contract/recordings).
HINTS = {
    "InvalidPropertyValue": "Batch refused the property named above: fix it in the manifest and run again",
    "MissingRequiredProperty": "add the property named above to the manifest and run again",
    "UnsupportedProperty": "this Batch account or api-version does not take the property named above; "
    "remove it from the manifest",
    "PoolNotFound": "it was deleted meanwhile; run plan again to see the current state",
    "JobNotFound": "it was deleted meanwhile; run plan again to see the current state",
    "TaskNotFound": "it was deleted meanwhile; run plan again to see the current state",
    "PoolExists": "a pool with this id appeared meanwhile; run plan again to see whose it is",
    "JobExists": "a job with this id appeared meanwhile; run plan again to see whose it is",
    "PoolBeingDeleted": "wait until the pool is gone, then run again",
    "JobBeingDeleted": "wait until the job is gone, then run again",
    "PoolNotEmpty": "resize the pool to 0 nodes first, or let batchrun replace it (--confirm-replace)",
}


def _values(error: HttpResponseError) -> dict[str, str]:
    """The ``values`` list of a Batch error body (``{"key", "value"}`` pairs), e.g. PropertyName. The SDK
    keeps the body as a ``BatchError`` model (mapping-like) or a plain dict."""
    getter = getattr(getattr(error, "model", None), "get", None)
    items = getter("values") if callable(getter) else None
    result: dict[str, str] = {}
    for item in items if isinstance(items, list) else ():
        get = getattr(item, "get", None)
        if callable(get) and get("key"):
            result[str(get("key"))] = str(get("value") or "")
    return result


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Turn SDK errors raised inside the block into batchrun errors naming what was being done."""
    try:
        yield
    except AzureError as error:
        raise translate(error, doing) from error
