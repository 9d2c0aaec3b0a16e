"""Replay of real Azure Batch recordings against the local target: every recorded status code is asserted.

The sequences are in ``recordings.json`` (each case names its source recording and commit). A step whose
status differs for a documented reason is listed in ``DIFFERENCES`` with that reason and the status the
local target answers instead (also in docs/emulator.md); everything else must answer as recorded.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import HttpResponseError
from azure.core.rest import HttpRequest, HttpResponse
from azure.storage.blob import BlobServiceClient, ContainerSasPermissions, generate_container_sas

from batchrun.emulator.server import EmulatorServer
from batchrun.local.azurite import AzuriteEndpoint
from tests.emulator.conftest import ACCOUNT, KEY, emulator_config

RECORDINGS = json.loads((Path(__file__).parent / "recordings.json").read_text())
CASES = {case["name"]: case for case in RECORDINGS["cases"]}
# (case, step index) -> (status the local target answers, why it differs from the recording)
DIFFERENCES: dict[tuple[str, int], tuple[int, str]] = {}
MINIMUM_MATCHING = 70
_PLACEHOLDER = re.compile(r"\{([a-z_0-9]+)\}")


def test_enough_recorded_statuses_are_asserted() -> None:
    total = sum(len(case["steps"]) for case in RECORDINGS["cases"])
    assert total >= 77
    assert total - len(DIFFERENCES) >= MINIMUM_MATCHING


def lookup(body: Any, path: str) -> Any:
    """A value in a JSON body by a dotted path: keys, indexes, ``#`` (a length), ``?key=value`` (a filter)."""
    if isinstance(body, dict) and path in body:  # a key with a dot in it: odata.nextLink
        return body[path]
    current = body
    for part in path.split("."):
        if part == "#":
            return len(current)
        if part.startswith("?"):
            key, _, wanted = part[1:].partition("=")
            current = [
                item for item in current if json.dumps(item.get(key)) == wanted or item.get(key) == wanted
            ]
        elif isinstance(current, list):
            current = current[int(part)]
        else:
            current = current[part]
    return current


def holds(body: Any, conditions: dict[str, Any]) -> bool:
    for path, wanted in conditions.items():
        try:
            if ".*." in path:
                items, _, field = path.partition(".*.")
                if not all(lookup(item, field) == wanted for item in lookup(body, items)):
                    return False
            elif lookup(body, path) != wanted:
                return False
        except (KeyError, IndexError, TypeError, ValueError):
            return False
    return True


def substitute(value: Any, variables: dict[str, str], in_path: bool = False) -> Any:
    if isinstance(value, str):

        def replace(match: re.Match[str]) -> str:
            text = variables[match.group(1)]
            return quote(text, safe="") if in_path and not text.startswith("http") else text

        return _PLACEHOLDER.sub(replace, value)
    if isinstance(value, list):
        return [substitute(item, variables) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, variables) for key, item in value.items()}
    return value


def send(client: BatchClient, method: str, path: str, body: Any, api_version: str) -> HttpResponse:
    if "api-version=" not in path:
        path = f"{path}{'&' if '?' in path else '?'}api-version={api_version}"
    request = HttpRequest(method, path, json=body) if body is not None else HttpRequest(method, path)
    try:
        response = client.send_request(request, stream=True)
    except HttpResponseError as error:
        assert error.response is not None, f"{method} {path}: {error!r}"
        response = error.response
    response.read()
    return response


def parsed(response: HttpResponse) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


@pytest.fixture
def target(tmp_path: Path, azurite: AzuriteEndpoint) -> Iterator[BatchClient]:
    server = EmulatorServer(emulator_config(tmp_path / "emulator", azurite))
    server.start()
    try:
        yield BatchClient(server.url, AzureNamedKeyCredential(ACCOUNT, KEY))
    finally:
        server.stop()


def log_container(blob_service: BlobServiceClient, name: str) -> str:
    container = blob_service.get_container_client(name)
    if not container.exists():
        container.create_container()
    sas = generate_container_sas(
        blob_service.account_name,
        name,
        account_key=blob_service.credential.account_key,
        permission=ContainerSasPermissions(write=True, create=True, add=True),
        expiry=datetime.now(timezone.utc) + timedelta(hours=1),
    )
    return f"{container.url}?{sas}"


@pytest.mark.parametrize("name", sorted(CASES))
def test_recorded_sequence(name: str, target: BatchClient, blob_service: BlobServiceClient) -> None:
    case = CASES[name]
    version = case["api_version"]
    variables = {
        "log_container_sas": log_container(blob_service, f"replay-logs-{name.replace('_', '-')}"),
        "six_minutes_ago": (datetime.now(timezone.utc) - timedelta(minutes=6))
        .isoformat()
        .replace("+00:00", "Z"),
    }
    for step in case.get("setup", []):
        response = send(target, step["method"], step["path"], step.get("body"), version)
        assert response.status_code < 400, f"setup {step['method']} {step['path']}: {response.text()}"
    mismatches = []
    for index, step in enumerate(case["steps"]):
        path = substitute(step["path"], variables, in_path=True)
        body = substitute(step.get("body"), variables)
        deadline = time.monotonic() + 90
        while True:
            response = send(target, step["method"], path, body, version)
            if "until" not in step or holds(parsed(response), step["until"]) or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        expected, why = DIFFERENCES.get((name, index), (step["status"], ""))
        where = f"{name} step {index}: {step['method']} {step['path']}"
        if response.status_code != expected:
            mismatches.append(
                f"{where}: {response.status_code} (recorded {step['status']}) {response.text()[:300]}"
            )
            continue
        document = parsed(response)
        if step.get("expect") and not why:
            assert holds(document, step["expect"]), f"{where}: {document}"
        for absent in step.get("absent", []):
            assert absent not in (document or {}), f"{where}: {absent} should not be returned"
        for variable, source in step.get("bind", {}).items():
            variables[variable] = lookup(document, source)
    assert not mismatches, "\n".join(mismatches)
