"""Authentication on every request, and loopback-only listening."""

from __future__ import annotations

import base64
import socket
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import pytest
import requests
from azure.batch import BatchClient
from azure.core.credentials import AccessToken, AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError

from batchrun.emulator import auth
from tests.emulator.conftest import ACCOUNT, KEY, TOKEN, Emulator


def signed_get(
    emulator: Emulator, path: str, key: str = KEY, date: datetime | None = None
) -> requests.Response:
    stamp = format_datetime(date or datetime.now(timezone.utc), usegmt=True)
    headers = {"ocp-date": stamp}
    query = "api-version=2025-06-01"
    text = auth.string_to_sign("GET", headers, path, query, ACCOUNT)
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{auth.sign(base64.b64decode(key), text)}"
    return requests.get(f"{emulator.url}{path}?{query}", headers=headers, timeout=10)


def test_wrong_shared_key_gets_403(emulator: Emulator) -> None:
    wrong = BatchClient(
        emulator.url, AzureNamedKeyCredential(ACCOUNT, base64.b64encode(b"wrong" * 8).decode())
    )
    with pytest.raises(HttpResponseError) as raised:
        list(wrong.list_pools())
    assert raised.value.status_code == 403
    assert raised.value.error.code == "AuthenticationFailed"


def test_missing_and_stale_signatures_get_403(emulator: Emulator) -> None:
    response = requests.get(f"{emulator.url}/pools?api-version=2025-06-01", timeout=10)
    assert response.status_code == 403
    body = response.json()
    assert body["code"] == "AuthenticationFailed" and body["message"]["lang"] == "en-US"
    assert signed_get(emulator, "/pools").status_code == 200
    stale = datetime.now(timezone.utc) - timedelta(minutes=20)
    assert signed_get(emulator, "/pools", date=stale).status_code == 403
    # Management routes and the emulator's own routes need credentials too.
    assert requests.get(f"{emulator.url}/_emulator/requests", timeout=10).status_code == 403
    arm = (
        f"{emulator.url}/subscriptions/sub-local/resourceGroups/rg-local/providers/Microsoft.Batch/batchAccounts/"
        f"{ACCOUNT}?api-version=2024-07-01"
    )
    assert requests.get(arm, timeout=10).status_code == 403


def test_bearer_token_only_when_it_matches(emulator: Emulator) -> None:
    good = requests.get(
        f"{emulator.url}/pools?api-version=2025-06-01",
        headers={"Authorization": f"Bearer {TOKEN}"},
        timeout=10,
    )
    assert good.status_code == 200
    bad = requests.get(
        f"{emulator.url}/pools?api-version=2025-06-01",
        headers={"Authorization": "Bearer something-else"},
        timeout=10,
    )
    assert bad.status_code == 403


def test_sdk_with_token_credential_over_http(emulator: Emulator) -> None:
    class LocalToken:
        def get_token(self, *scopes: str, **kwargs: object) -> AccessToken:
            return AccessToken(TOKEN, int(datetime.now(timezone.utc).timestamp()) + 3600)

    client = BatchClient(emulator.url, LocalToken())  # type: ignore[arg-type]
    # azure-core refuses bearer tokens over http unless the call opts out.
    assert list(client.list_pools(enforce_https=False)) is not None


def test_listens_on_loopback_only(emulator: Emulator) -> None:
    port = int(emulator.url.rsplit(":", 1)[1])
    listening = []
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                listening.append(socket.inet_ntoa(bytes.fromhex(address)[::-1]))
    assert listening == ["127.0.0.1"]
    with open("/proc/net/tcp6") as table:
        assert not any(
            int(line.split()[1].split(":")[1], 16) == port and line.split()[3] == "0A"
            for line in table.readlines()[1:]
        )
