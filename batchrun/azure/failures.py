"""SDK exceptions -> batchrun errors, with the Batch error code and a redacted message."""

from __future__ import annotations

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
from batchrun.redact import redact


def error_code(error: BaseException) -> str:
    """The Batch/Storage error code of an SDK error ("" when none)."""
    code = getattr(error, "error_code", None)
    if code:
        return str(code)
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
        details = getattr(getattr(error, "error", None), "details", None) or []
        extra = "; ".join(f"{d.code}: {d.message}" for d in details if getattr(d, "code", None))
        suffix = f" ({redact(extra)})" if extra else ""
        return TargetError(f"{doing}: HTTP {status_of(error)} {code}: {message}{suffix}")
    return TargetError(f"{doing}: {message}")


@contextmanager
def translated(doing: str) -> Iterator[None]:
    """Turn SDK errors raised inside the block into batchrun errors naming what was being done."""
    try:
        yield
    except AzureError as error:
        raise translate(error, doing) from error
