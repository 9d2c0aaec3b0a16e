"""Batch-shaped error responses: ``{"code", "message": {"lang", "value"}, "values": [{"key", "value"}]}``.

:class:`BatchApiError` never leaves the emulator: route wrappers turn it into an HTTP response.
"""

from __future__ import annotations

import json
import uuid

from starlette.responses import Response

ERROR_METADATA = "Microsoft.Azure.Batch.Protocol.Entities.Container.errors/@Element"


class BatchApiError(Exception):
    def __init__(self, status: int, code: str, message: str, values: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.values = values or {}

    def body(self, metadata: str | None = None) -> dict[str, object]:
        request_id = str(uuid.uuid4())
        body: dict[str, object] = {"odata.metadata": metadata} if metadata else {}
        body |= {
            "code": self.code,
            "message": {"lang": "en-US", "value": f"{self.message}\nRequestId:{request_id}"},
        }
        if self.values:
            body["values"] = [{"key": key, "value": value} for key, value in self.values.items()]
        return body

    def response(self, head: bool = False, base_url: str = "") -> Response:
        """The error as Batch sends it; with ``base_url`` the body leads with ``odata.metadata``."""
        if head or self.status == 304:
            return Response(status_code=self.status)
        metadata = f"{base_url}/$metadata#{ERROR_METADATA}" if base_url else None
        return Response(
            json.dumps(self.body(metadata)),
            status_code=self.status,
            media_type="application/json;odata=minimalmetadata",
        )


def not_found(kind: str, resource_id: str) -> BatchApiError:
    """404 with Batch's code for the resource kind (PoolNotFound, JobNotFound, TaskNotFound, ...)."""
    return BatchApiError(
        404,
        f"{kind}NotFound",
        f"The specified {kind.lower()} does not exist.",
        {f"{kind}Id": resource_id} if kind != "File" else {"FilePath": resource_id},
    )


def exists(kind: str, resource_id: str) -> BatchApiError:
    return BatchApiError(
        409, f"{kind}Exists", f"The specified {kind.lower()} already exists.", {f"{kind}Id": resource_id}
    )


def invalid_value(name: str, value: object, reason: str) -> BatchApiError:
    return BatchApiError(
        400,
        "InvalidPropertyValue",
        f"The value provided for one of the properties in the request body is invalid: {reason}",
        {"PropertyName": name, "PropertyValue": str(value)},
    )


def missing_property(name: str) -> BatchApiError:
    return BatchApiError(
        400,
        "MissingRequiredProperty",
        "A required property was not specified in the request body.",
        {"PropertyName": name},
    )


def unsupported_property(name: str) -> BatchApiError:
    return BatchApiError(
        400,
        "UnsupportedProperty",
        "The specified property is not supported by this version of the Batch service.",
        {"PropertyName": name},
    )


def invalid_query(name: str, value: str, reason: str) -> BatchApiError:
    return BatchApiError(
        400,
        "InvalidQueryParameterValue",
        f"Value for one of the query parameters specified in the request URI is invalid: {reason}",
        {"QueryParameterName": name, "QueryParameterValue": value, "Reason": reason},
    )


def condition_not_met(read: bool) -> BatchApiError:
    return BatchApiError(
        304 if read else 412,
        "ConditionNotMet",
        "The condition specified using HTTP conditional header(s) is not met.",
    )


def conflict(code: str, message: str, values: dict[str, str] | None = None) -> BatchApiError:
    return BatchApiError(409, code, message, values)


_DELETING_MESSAGES = {
    "Pool": "The specified pool has been marked for deletion and is being reclaimed.",
    "Job": "The specified job has been marked for deletion and is being garbage collected.",
    "JobSchedule": "The specified job schedule has been marked for deletion and is being garbage collected.",
}


def being_deleted(kind: str, resource_id: str) -> BatchApiError:
    """409 PoolBeingDeleted / JobBeingDeleted."""
    return BatchApiError(409, f"{kind}BeingDeleted", _DELETING_MESSAGES[kind], {f"{kind}Id": resource_id})
