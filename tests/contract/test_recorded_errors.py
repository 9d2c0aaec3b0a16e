"""Real Batch error bodies (recorded) through the real SDK map to batchrun's own clear errors.

A loopback HTTP server answers each request with a recorded status and body; the SDK raises as it would
against Azure, and :func:`batchrun.azure.failures.translate` must turn that into a ``TargetError`` that names
what was being done, the Batch code, the property and reason Batch gave, and what to do next.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import AzureError

from batchrun.azure.failures import translate
from batchrun.errors import TargetError
from tests.contract.recordings import errors


class Answer:
    status = 500
    body: dict[str, Any] = {}


class Handler(BaseHTTPRequestHandler):
    answer = Answer()

    def _reply(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        if length:
            self.rfile.read(length)
        data = json.dumps(self.answer.body).encode()
        self.send_response(self.answer.status)
        self.send_header("Content-Type", "application/json; odata=minimalmetadata")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = _reply

    def log_message(self, format: str, *args: Any) -> None:
        return None


@pytest.fixture(scope="module")
def client() -> Iterator[BatchClient]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    credential = AzureNamedKeyCredential("account", "a2V5")
    yield BatchClient(f"http://127.0.0.1:{server.server_port}", credential, retry_total=0)
    server.shutdown()


def call(client: BatchClient, request: str) -> tuple[str, AzureError]:
    try:
        if request.startswith("GET /pools/"):
            client.get_pool(request.rsplit("/", 1)[1])
            doing = ""
        elif request == "POST /jobs":
            client.create_job(models.BatchJobCreateOptions({"id": "j", "poolInfo": {"poolId": "p"}}))
        else:
            client.create_pool(models.BatchPoolCreateOptions({"id": "p", "vmSize": "standard_d2_v2"}))
    except AzureError as error:
        doing = f"sending {request}"
        return doing, error
    raise AssertionError(f"{request} did not fail")


EXPECTED = {
    "PoolNotFound": ("HTTP 404 PoolNotFound: The specified pool does not exist", "run plan again"),
    "JobExists": ("HTTP 409 JobExists: The specified job already exists", "run plan again"),
    "InvalidPropertyValue": ("HTTP 400 InvalidPropertyValue: The value provided", "fix it in the manifest"),
}


@pytest.mark.parametrize(("name", "case"), errors(), ids=[name for name, _ in errors()])
def test_recorded_error_becomes_a_clear_target_error(client: BatchClient, name: str, case: Any) -> None:
    Handler.answer.status, Handler.answer.body = case["status"], case["body"]
    doing, error = call(client, case["request"])
    translated = translate(error, doing)
    assert isinstance(translated, TargetError)
    text = str(translated)
    what, how = EXPECTED[case["body"]["code"]]
    assert text.startswith(f"{doing}: {what}"), text
    assert how in text
    assert "RequestId" not in text and "(" + case["body"]["code"] + ")" not in text
    for item in case["body"].get("values", ()):
        if item["key"] in ("PropertyName", "Reason"):
            assert item["value"] in text


@pytest.mark.parametrize("name", ["password", "userAccounts[0].password"])
def test_a_refused_password_is_never_echoed(client: BatchClient, name: str) -> None:
    body = {
        "code": "InvalidPropertyValue",
        "message": {"lang": "en-US", "value": "The value provided for one of the properties is invalid."},
        "values": [
            {"key": "PropertyName", "value": name},
            {"key": "PropertyValue", "value": "hunter2-secret"},
            {"key": "Reason", "value": "The password does not meet the complexity requirements"},
        ],
    }
    Handler.answer.status, Handler.answer.body = 400, body
    doing, error = call(client, "POST /pools")
    text = str(translate(error, doing))
    assert "hunter2-secret" not in text
    assert f"PropertyName: {name}; PropertyValue: (sensitive); Reason: The password does not meet" in text
