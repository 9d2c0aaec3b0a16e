"""Request authentication: Batch SharedKey (data plane), the local bearer token (both planes), and the
job-scoped tokens tasks get through ``authenticationTokenSettings`` (``AZ_BATCH_AUTHENTICATION_TOKEN``).

A job token is ``bjt1.<payload>.<signature>``: the payload names the job and when the token expires, the
signature is an HMAC of it with the account key, so the emulator issues and checks it without storing it. As
on Azure Batch, it grants the operations on the job that holds the task (``/jobs/<id>`` and everything under
it) and nothing else.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import parse_qs, unquote

from batchrun.emulator.errors import BatchApiError

SIGNED_HEADERS = (
    "content-encoding",
    "content-language",
    "content-length",
    "content-md5",
    "content-type",
    "date",
    "if-modified-since",
    "if-match",
    "if-none-match",
    "if-unmodified-since",
    "range",
)
MAX_CLOCK_SKEW = timedelta(minutes=15)
JOB_TOKEN_PREFIX = "bjt1."
JOB_TOKEN_LIFETIME = timedelta(days=7)


def authentication_failed(reason: str) -> BatchApiError:
    return BatchApiError(
        403,
        "AuthenticationFailed",
        "Server failed to authenticate the request. Make sure the value of Authorization header is formed "
        "correctly including the signature.",
        {"AuthenticationErrorDetail": reason},
    )


def string_to_sign(
    method: str,
    headers: Mapping[str, str],
    raw_path: str,
    query_string: str,
    account_name: str,
    content_length_override: str | None = None,
) -> str:
    """The canonical string the azure-batch SDK signs (azure/batch/_patch.py BatchSharedKeyAuthPolicy)."""
    lowered = {name.lower(): value for name, value in headers.items() if value}
    if content_length_override is not None:
        lowered["content-length"] = content_length_override
    elif method not in ("GET", "HEAD") and "content-length" not in lowered:
        lowered["content-length"] = "0"
    text = method + "\n" + "\n".join(lowered.get(name, "") for name in SIGNED_HEADERS) + "\n"
    for name, value in sorted((n, v) for n, v in lowered.items() if "ocp-" in n):
        text += f"{name}:{value}\n"
    text += f"/{account_name}{raw_path}"
    query = parse_qs(query_string)
    for name in sorted(query):
        value = query[name][0]
        if value:
            text += f"\n{name}:{value}"
    return text


def sign(key: bytes, text: str) -> str:
    return base64.b64encode(hmac.new(key, text.encode("utf-8"), hashlib.sha256).digest()).decode()


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def job_token(account_key: bytes, job_id: str, now: datetime | None = None) -> str:
    """A token for the operations on job ``job_id``, valid for :data:`JOB_TOKEN_LIFETIME`."""
    expires = int(((now or datetime.now(timezone.utc)) + JOB_TOKEN_LIFETIME).timestamp())
    payload = _b64(json.dumps({"job": job_id, "exp": expires}, separators=(",", ":")).encode())
    signature = _b64(hmac.new(account_key, (JOB_TOKEN_PREFIX + payload).encode(), hashlib.sha256).digest())
    return f"{JOB_TOKEN_PREFIX}{payload}.{signature}"


def task_token(account_key: bytes, job_id: str, spec: Mapping[str, Any]) -> str | None:
    """The job token a task asks for with ``authenticationTokenSettings.access: [job]``, else None."""
    settings = spec.get("authenticationTokenSettings") or {}
    return job_token(account_key, job_id) if "job" in (settings.get("access") or ()) else None


def job_of_token(account_key: bytes, token: str, now: datetime | None = None) -> str | None:
    """The job a valid, unexpired job token is for; None for anything else."""
    if not token.startswith(JOB_TOKEN_PREFIX):
        return None
    payload, _, signature = token[len(JOB_TOKEN_PREFIX) :].partition(".")
    expected = _b64(hmac.new(account_key, (JOB_TOKEN_PREFIX + payload).encode(), hashlib.sha256).digest())
    if not signature or not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
        return None
    try:
        claims = json.loads(_unb64(payload))
        job, expires = str(claims["job"]), int(claims["exp"])
    except (ValueError, KeyError, TypeError):
        return None
    current = now or datetime.now(timezone.utc)
    return job if current.timestamp() < expires else None


def _within_job(raw_path: str, job_id: str) -> bool:
    path = unquote(raw_path).lower()
    own = f"/jobs/{job_id.lower()}"
    return path == own or path.startswith(own + "/")


def authorization_failed() -> BatchApiError:
    return BatchApiError(
        403, "AuthorizationFailure", "This request is not authorized to perform this operation."
    )


def check_request(
    method: str,
    headers: Mapping[str, str],
    raw_path: str,
    query_string: str,
    account_name: str,
    account_key: bytes,
    token: str,
    now: datetime | None = None,
) -> None:
    """Raise a 403 AuthenticationFailed unless the request carries a valid SharedKey or the local token."""
    authorization = headers.get("authorization", "")
    if not authorization:
        raise authentication_failed("The Authorization header is missing.")
    scheme, _, credential = authorization.partition(" ")
    if scheme.lower() == "bearer":
        if hmac.compare_digest(credential.strip().encode(), token.encode()):
            return
        job = job_of_token(account_key, credential.strip(), now)
        if job is not None:
            if _within_job(raw_path, job):
                return
            raise authorization_failed()
        raise authentication_failed("The bearer token is not valid for this account.")
    if scheme != "SharedKey":
        raise authentication_failed(f"Unsupported authorization scheme '{scheme}'.")
    name, _, signature = credential.partition(":")
    if name != account_name:
        raise authentication_failed(f"The account name '{name}' does not match this account.")
    stamp = headers.get("ocp-date") or headers.get("date")
    if not stamp:
        raise authentication_failed("Neither ocp-date nor Date is present in the request.")
    try:
        sent_at = parsedate_to_datetime(stamp)
    except (TypeError, ValueError):
        raise authentication_failed(f"The request date '{stamp}' is not a valid RFC 1123 date.") from None
    if sent_at.tzinfo is None:
        sent_at = sent_at.replace(tzinfo=timezone.utc)
    current = now or datetime.now(timezone.utc)
    if abs(current - sent_at) > MAX_CLOCK_SKEW:
        raise authentication_failed("The request date is more than 15 minutes away from the server time.")
    candidates = [string_to_sign(method, headers, raw_path, query_string, account_name)]
    if method in ("GET", "HEAD") and headers.get("content-length"):
        # Some HTTP stacks add "Content-Length: 0" to bodiless GETs after the SDK signed the request.
        candidates.append(string_to_sign(method, headers, raw_path, query_string, account_name, ""))
    for text in candidates:
        if hmac.compare_digest(sign(account_key, text), signature):
            return
    raise authentication_failed(
        "The MAC signature found in the HTTP request is not the same as any computed signature."
    )
