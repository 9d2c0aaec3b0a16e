"""SDK clients built from a :class:`batchrun.target.Target`: Batch data plane, Blob storage, Batch management.

Shared key when the target carries keys, ``DefaultAzureCredential`` otherwise. The local target's management
plane speaks plain http with a static bearer token, which azure-core's bearer policy refuses over http, so a
small policy sets that header instead. With ``request_log`` set, every HTTP attempt prints one redacted line
(method, URL without signatures, status, milliseconds): that is the CLI's ``-v``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import msgspec
from azure.batch import BatchClient
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.core.pipeline import PipelineRequest, PipelineResponse
from azure.core.pipeline.policies import HTTPPolicy, RetryPolicy, SansIOHTTPPolicy
from azure.storage.blob import BlobServiceClient, ExponentialRetry
from msgspec import field

from batchrun.redact import redact, repr_without
from batchrun.target import Target

RequestLog = Callable[[str], None]

# Parallel task adds and uploads use up to this many threads; the HTTP connection pool must be as large.
CONNECTION_POOL_SIZE = 32


class RequestLogPolicy(HTTPPolicy[Any, Any]):
    """Report one redacted line per HTTP attempt to ``sink``."""

    def __init__(self, sink: RequestLog, secrets: tuple[str, ...]) -> None:
        super().__init__()
        self._sink = sink
        self._secrets = secrets

    def send(self, request: PipelineRequest[Any]) -> PipelineResponse[Any, Any]:
        started = time.perf_counter()
        http_request = request.http_request
        try:
            response: PipelineResponse[Any, Any] = self.next.send(request)
        except Exception as error:
            elapsed = (time.perf_counter() - started) * 1000
            line = f"{http_request.method} {http_request.url} -> {type(error).__name__} ({elapsed:.0f} ms)"
            self._sink(redact(line, *self._secrets))
            raise
        elapsed = (time.perf_counter() - started) * 1000
        status = response.http_response.status_code
        line = f"{http_request.method} {http_request.url} -> {status} ({elapsed:.0f} ms)"
        self._sink(redact(line, *self._secrets))
        return response


class StaticBearerPolicy(SansIOHTTPPolicy[Any, Any]):
    """Authorization: Bearer <token> for the local management plane (plain http on loopback)."""

    def __init__(self, token: str) -> None:
        super().__init__()
        self._token = token

    def on_request(self, request: PipelineRequest[Any]) -> None:
        request.http_request.headers["Authorization"] = f"Bearer {self._token}"


class StaticTokenCredential:
    """A TokenCredential returning a fixed token (local target only)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken(self._token, int(time.time()) + 3600)


def _transport(request_log: RequestLog | None, target: Target, url: str) -> dict[str, Any]:
    """The HTTP transport of a client of ``url``.

    What requests reads from the environment is read once here, for this client's host: the proxy of
    ``HTTPS_PROXY``/``HTTP_PROXY`` unless ``NO_PROXY`` names the host, and a CA bundle from
    ``REQUESTS_CA_BUNDLE``/``CURL_CA_BUNDLE``. Left to requests, they were read again for every request,
    walking the whole environment twice: about 8 % of a request's CPU time. ``~/.netrc`` is not read (the
    credentials are the client's). Each request is prepared in one step
    (:class:`batchrun.azure.http_session.PreparedSession`)."""
    import requests
    from azure.core.pipeline.transport import RequestsTransport

    from batchrun.azure.http_session import PreparedSession

    session = PreparedSession()
    from_environment = session.merge_environment_settings(url, {}, None, None, None)
    session.trust_env = False
    session.proxies.update(from_environment["proxies"])
    adapter = requests.adapters.HTTPAdapter(pool_connections=4, pool_maxsize=CONNECTION_POOL_SIZE)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    transport = RequestsTransport(
        session=session, session_owner=True, connection_verify=from_environment["verify"]
    )
    options: dict[str, Any] = {"transport": transport}
    if request_log is not None:
        options["per_retry_policies"] = [RequestLogPolicy(request_log, target.secrets())]
    return options


class WriteRetryPolicy(RetryPolicy[Any, Any]):
    """azure-core's retries, for every method: a connection reset, a 408/429 (with or without Retry-After)
    or a 5xx is retried on POST and PATCH too, not only on the idempotent methods.

    That is safe because every write batchrun makes is checked against live state when it is repeated
    (:mod:`batchrun.azure.write`): a create answered 409 is accepted only when the live resource is this
    workload's, a task add answered TaskExists only when the live task has the same digest, a package
    version answered 409 is finished when still pending. Retry-After is honoured; without it the waits are
    0, 1, 2, 4, 8, 8 s (a target that stopped answering is reported after about 25 s).
    """

    METHODS = frozenset(["HEAD", "GET", "PUT", "DELETE", "OPTIONS", "TRACE", "POST", "PATCH"])

    def __init__(self) -> None:
        super().__init__(
            retry_total=6,
            retry_connect=3,
            retry_read=6,
            retry_status=6,
            retry_backoff_factor=0.5,
            retry_backoff_max=8,
        )

    def configure_retries(self, options: dict[str, Any]) -> dict[str, Any]:
        settings: dict[str, Any] = super().configure_retries(options)
        settings["methods"] = self.METHODS
        return settings


def default_credential() -> Any:
    """Entra ID credential chain (environment, managed identity, Azure CLI, ...)."""
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def build_batch_client(target: Target, request_log: RequestLog | None = None) -> BatchClient:
    credential: Any
    if target.batch_key is not None:
        credential = AzureNamedKeyCredential(target.batch_account, target.batch_key)
    else:
        credential = default_credential()
    return BatchClient(
        target.batch_url,
        credential,
        retry_policy=WriteRetryPolicy(),
        **_transport(request_log, target, target.batch_url),
    )


class StorageRetry(ExponentialRetry):
    """azure-storage-blob's exponential retry with its waits capped (see storage_retry_policy)."""

    def __init__(self, *, longest_wait: float, **options: Any) -> None:
        super().__init__(**options)
        self.longest_wait = longest_wait

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        return min(float(super().get_backoff_time(settings)), self.longest_wait)


def storage_retry_policy() -> ExponentialRetry:
    """Storage retries that give up on an unreachable endpoint in ~8 s, and ride out a flaky one.

    The SDK default waits 18 s, 24 s and 42 s (+-3 s) between attempts, so a stopped Azurite or a mistyped
    account URL left a command silent for a minute and a half; it also gives up after three 503s or three
    dropped answers in a row, which at a 20 % fault rate fails one upload in a few thousand. Here: waits of
    3 s, 5 s, then 8 s (+-1 s); at most two retries of a refused connection (nothing is listening), eight of a
    throttled or failed request (500/503) or of a connection dropped mid-answer, ten in all.
    """
    return StorageRetry(
        longest_wait=8,
        initial_backoff=1,
        increment_base=2,
        retry_total=10,
        retry_connect=2,
        retry_read=8,
        retry_status=8,
        random_jitter_range=1,
    )


def build_blob_service(target: Target, request_log: RequestLog | None = None) -> BlobServiceClient:
    credential: Any
    if target.storage_key is not None:
        credential = {"account_name": target.storage_account, "account_key": target.storage_key}
    else:
        credential = default_credential()
    options = _transport(request_log, target, target.blob_url)
    options["retry_policy"] = storage_retry_policy()
    if "per_retry_policies" in options:
        # azure-storage-blob builds its own pipeline and ignores per_retry_policies; this (private but
        # long-standing) hook appends policies after its retry policy, so each attempt is still one line.
        options["_additional_pipeline_policies"] = options.pop("per_retry_policies")
    return BlobServiceClient(target.blob_url, credential=credential, **options)


def build_management_client(target: Target, request_log: RequestLog | None = None) -> Any:
    """BatchManagementClient for application packages; needs subscription, resource group and account name."""
    from azure.mgmt.batch import BatchManagementClient

    options = _transport(request_log, target, target.management_url)
    options["retry_policy"] = WriteRetryPolicy()
    credential: Any
    if target.management_token is not None:
        credential = StaticTokenCredential(target.management_token)
        options["authentication_policy"] = StaticBearerPolicy(target.management_token)
    else:
        credential = default_credential()
    return BatchManagementClient(
        credential, target.subscription_id or "", base_url=target.management_url, **options
    )


class Clients(msgspec.Struct):
    """The clients of one command run; the management client is built on first use."""

    target: Target
    batch: BatchClient
    blob: BlobServiceClient
    request_log: RequestLog | None = None
    _management: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __repr__(self) -> str:
        return repr_without(self, "_management", "_lock")

    def management(self) -> Any:
        with self._lock:
            if self._management is None:
                self._management = build_management_client(self.target, self.request_log)
            return self._management

    def close(self) -> None:
        self.batch.close()
        self.blob.close()
        if self._management is not None:
            self._management.close()


def build_clients(target: Target, request_log: RequestLog | None = None) -> Clients:
    """Build the Batch and Blob clients for ``target``; ``request_log`` gets one redacted line per request."""
    return Clients(
        target=target,
        batch=build_batch_client(target, request_log),
        blob=build_blob_service(target, request_log),
        request_log=request_log,
    )
