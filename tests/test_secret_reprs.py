"""Records that hold a key or a token never show it in their repr (a traceback, a debug print); the upload
journal's SAS URLs: tests/node/test_upload_journal.py."""

from __future__ import annotations

from pathlib import Path

from batchrun.azure.clients import Clients
from batchrun.local.credentials import Credentials
from batchrun.local.target import LocalTarget
from batchrun.target import Target

KEY = "c2VjcmV0LWtleS1ieXRlcw=="
TOKEN = "tok-3f9a71"


def test_targets_and_credentials_show_their_endpoints_and_no_secret() -> None:
    target = Target(
        kind="local",
        batch_url="http://127.0.0.1:1",
        batch_account="local",
        batch_key=KEY,
        blob_url="http://127.0.0.1:2",
        storage_account="dev",
        storage_key=KEY + "2",
        management_token=TOKEN,
    )
    local = LocalTarget(
        Path("/h"), "http://127.0.0.1:1", "local", KEY, "http://127.0.0.1:2", "dev", KEY, TOKEN
    )
    clients = Clients(target, object(), object())
    shown = [repr(target), repr(local), repr(Credentials(KEY, TOKEN)), repr(clients)]
    for text in shown:
        assert KEY not in text and TOKEN not in text, text
    assert "batch_url='http://127.0.0.1:1'" in shown[0] and "storage_account='dev'" in shown[0]
    assert shown[2] == "Credentials()"
    assert "_lock" not in shown[3] and "target=Target(kind='local'" in shown[3]
