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
