"""The clients' HTTP transport reads what requests would take from the environment once, when it is built:
the proxy for the client's host (unless NO_PROXY names it) and a CA bundle. ~/.netrc is never read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from batchrun.azure.clients import build_clients
from batchrun.target import Target

BATCH = "https://acct.westeurope.batch.azure.com"
BLOB = "https://store.blob.core.windows.net"


def _target() -> Target:
    return Target(
        kind="azure",
        batch_url=BATCH,
        batch_account="acct",
        batch_key="a2V5",
        blob_url=BLOB,
        storage_account="store",
        storage_key="a2V5",
    )


def _transports(target: Target) -> tuple[Any, Any]:
    """The Batch and Blob clients' transports (the clients are not closed: closing drops the sessions)."""
    clients = build_clients(target)
    return clients.batch._client._pipeline._transport, clients.blob._pipeline._transport


def test_the_proxy_and_ca_bundle_of_the_environment_are_kept_per_host(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    bundle = tmp_path / "corporate-ca.pem"
    bundle.write_text("-----BEGIN CERTIFICATE-----\n")
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    monkeypatch.setenv("NO_PROXY", "store.blob.core.windows.net")
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(bundle))
    monkeypatch.setenv("NETRC", str(tmp_path / "netrc"))
    (tmp_path / "netrc").write_text("machine acct.westeurope.batch.azure.com login me password secret\n")
    batch, blob = _transports(_target())
    for transport in (batch, blob):
        assert transport.session.trust_env is False
        assert transport.connection_config.verify == str(bundle)
    assert batch.session.proxies.get("https") == "http://proxy.corp:3128"
    assert "https" not in blob.session.proxies, "NO_PROXY names the storage host"


def test_without_proxy_or_bundle_the_system_defaults_are_used(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY", "https_proxy", "http_proxy", "all_proxy"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    batch, _ = _transports(_target())
    assert batch.session.proxies == {} and batch.connection_config.verify is True


def _generated() -> Any:
    yield b"chunk-1"
    yield b"chunk-2"


JOBS = f"{BATCH}/jobs"
PREPARED_CASES = [
    ("GET", f"{JOBS}?api-version=2024-07-01.20.0", {"x-ms-date": "d"}, None),
    ("get", f"{BLOB}/c/a%20b/\u00e9t\u00e9.txt?comp=lease", None, None),
    ("PUT", f"{BLOB}/c/blob", {"Content-Type": "application/octet-stream"}, b"data"),
    ("PUT", f"{BLOB}/c/empty", {"x-ms-blob-type": "BlockBlob"}, b""),
    ("POST", JOBS, {"Content-Type": "application/json"}, '{"id":"j"}'),
    ("POST", f"{JOBS}/j/addtaskcollection", {"Accept-Encoding": None}, b"{}"),
    ("PUT", f"{BLOB}/c/stream", {"User-Agent": "azsdk-python"}, "generated"),
    ("PUT", f"{BLOB}/c/file", {}, "file"),
    ("DELETE", "https://me:secret@store.blob.core.windows.net/c/blob", {"x-ms-version": "2026-10-06"}, None),
]


@pytest.mark.parametrize(("method", "url", "headers", "data"), PREPARED_CASES)
def test_a_request_prepared_in_one_step_is_the_one_requests_prepares(
    method: str, url: str, headers: dict[str, Any] | None, data: Any
) -> None:
    import io

    import requests

    from batchrun.azure.http_session import prepared

    def body() -> Any:  # a fresh one for each side: a stream is read once
        return {"generated": _generated(), "file": io.BytesIO(b"0123456789")}.get(data, data)

    session = requests.Session()
    session.trust_env = False
    request = requests.Request(method.upper(), url, headers=headers, data=body() or {})
    theirs = session.prepare_request(request)
    mine = prepared(session.headers, method, url, headers, body())
    assert (mine.method, mine.url) == (theirs.method, theirs.url)
    assert list(mine.headers.items()) == list(theirs.headers.items())  # the same headers, in their order
    assert type(mine.body) is type(theirs.body)
    if isinstance(theirs.body, (bytes, str)) or theirs.body is None:
        assert mine.body == theirs.body
    assert mine.hooks == theirs.hooks


@pytest.mark.parametrize(
    ("proxies", "stream", "verify", "cert"),
    [
        (None, None, None, None),
        ({"https": "http://other:8080"}, True, False, "client.pem"),
        ({"https": None}, False, "/etc/ca.pem", ("c.pem", "k.pem")),
    ],
)
def test_the_settings_of_a_prepared_request_are_the_ones_requests_merges(
    proxies: dict[str, Any] | None, stream: bool | None, verify: Any, cert: Any
) -> None:
    from batchrun.azure.http_session import PreparedSession, settings

    session = PreparedSession()
    session.trust_env = False
    session.proxies.update({"https": "http://proxy.corp:3128", "http": "http://proxy.corp:3128"})
    session.verify = "/corporate-ca.pem"
    theirs = session.merge_environment_settings(BATCH, dict(proxies or {}), stream, verify, cert)
    assert settings(session, proxies, stream, verify, cert) == theirs


def test_the_clients_prepare_in_one_step_and_anything_more_goes_the_general_way(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import requests

    from batchrun.azure.http_session import PreparedSession

    batch, blob = _transports(_target())
    assert isinstance(batch.session, PreparedSession) and isinstance(blob.session, PreparedSession)
    general: list[str] = []
    sent: list[requests.PreparedRequest] = []

    def through_requests(self: requests.Session, method: str, url: str, **options: Any) -> Any:
        general.append(url)
        return None

    def send(self: requests.Session, request: requests.PreparedRequest, **options: Any) -> Any:
        sent.append(request)
        return None

    monkeypatch.setattr(requests.Session, "request", through_requests)
    monkeypatch.setattr(requests.Session, "send", send)
    session = PreparedSession()
    session.trust_env = False
    session.request("GET", f"{BATCH}/jobs", headers={"x-ms-date": "d"}, allow_redirects=False)
    assert not general and sent[0].url == f"{BATCH}/jobs" and sent[0].headers["x-ms-date"] == "d"
    session.request("GET", f"{BATCH}/jobs", params={"a": "b"}, allow_redirects=False)
    session.request("GET", f"{BATCH}/jobs")  # redirects to follow
    session.cookies.set("ARRAffinity", "x")  # a cookie a service set: sent back, as requests does
    session.request("GET", f"{BATCH}/pools", allow_redirects=False)
    assert general == [f"{BATCH}/jobs", f"{BATCH}/jobs", f"{BATCH}/pools"] and len(sent) == 1
