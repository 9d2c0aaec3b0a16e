"""Faults and hostile input at the emulator: a full disk under its database, a damaged database, bodies
and queries the service must refuse without storing anything."""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.rest import HttpRequest

from batchrun.emulator.server import EmulatorServer
from batchrun.errors import LocalTargetError
from batchrun.local.azurite import AzuriteEndpoint
from tests.emulator.conftest import ACCOUNT, API, KEY, emulator_config, raw, vm, wait_until


@contextlib.contextmanager
def tiny_tmpfs(where: Path, size: str) -> Iterator[Path]:
    where.mkdir(parents=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True, check=False
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def fill(disk: Path) -> Path:
    filler = disk / "filler"
    with filler.open("wb") as handle:
        try:
            while True:
                handle.write(b"\0" * 65536)
                handle.flush()
        except OSError:
            pass
    return filler


def test_a_full_disk_never_acknowledges_what_it_did_not_save(
    tmp_path: Path, azurite: AzuriteEndpoint
) -> None:
    with tiny_tmpfs(tmp_path / "disk", "4m") as disk:
        config = emulator_config(disk / "state", azurite)
        server = EmulatorServer(config)
        server.start()
        client = BatchClient(server.url, AzureNamedKeyCredential(ACCOUNT, KEY))
        try:
            assert (
                raw(
                    client,
                    "POST",
                    "/pools",
                    {"id": "full", "vmSize": "s", "virtualMachineConfiguration": vm()},
                ).status_code
                == 201
            )
            assert (
                raw(client, "POST", "/jobs", {"id": "full-job", "poolInfo": {"poolId": "full"}}).status_code
                == 201
            )
            filler = fill(disk)
            padding = "x" * 8000
            acknowledged, refused = [], []
            for index in range(400):
                task = {
                    "id": f"t{index}",
                    "commandLine": "true",
                    "environmentSettings": [{"name": "PAD", "value": padding}],
                }
                response = raw(client, "POST", "/jobs/full-job/tasks", task)
                assert response.status_code in (201, 500), response.text()
                (acknowledged if response.status_code == 201 else refused).append(task["id"])
                if len(refused) >= 5:
                    break
            assert refused, "the disk never filled up"
            assert (
                "nothing was changed"
                in raw(
                    client,
                    "POST",
                    "/jobs/full-job/tasks",
                    {
                        "id": "late",
                        "commandLine": "true",
                        "environmentSettings": [{"name": "P", "value": padding}],
                    },
                ).text()
            )
            # What clients see now is what is on disk: no refused task is served from memory.
            for task_id in refused:
                assert raw(client, "GET", f"/jobs/full-job/tasks/{task_id}").status_code == 404
            listed = {task.id for task in client.list_tasks("full-job")}
            assert listed == set(acknowledged)
        finally:
            server.stop()
        filler.unlink()
        restarted = EmulatorServer(config)
        restarted.start()
        try:
            client = BatchClient(restarted.url, AzureNamedKeyCredential(ACCOUNT, KEY))
            assert {task.id for task in client.list_tasks("full-job")} == set(acknowledged)
        finally:
            restarted.stop()


def test_a_damaged_database_names_the_file_and_the_way_out(tmp_path: Path, azurite: AzuriteEndpoint) -> None:
    config = emulator_config(tmp_path / "state", azurite)
    config.state_dir.mkdir(parents=True)
    config.db_path.write_bytes(b"this is not a database" * 100)
    with pytest.raises(LocalTargetError) as raised:
        EmulatorServer(config).start()
    message = str(raised.value)
    assert str(config.db_path) in message
    assert "batchrun local reset" in message


@pytest.mark.parametrize(
    "body",
    [
        b'{"id": "nan-pool", "vmSize": "s", "targetDedicatedNodes": NaN}',
        b'{"id": "inf-pool", "vmSize": "s", "targetDedicatedNodes": Infinity}',
        b'{"id": "deep", "metadata": ' + b"[" * 600 + b"]" * 600 + b"}",
        b'{"id": "deep2", "x": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5000 + b"}",
    ],
)
def test_bodies_the_service_refuses(client: BatchClient, body: bytes) -> None:
    response = raw(client, "POST", "/pools", body)
    assert response.status_code == 400, response.text()
    assert response.json()["code"] == "InvalidRequestBody"
    assert raw(client, "GET", "/pools?$filter=startswith(id,'nan')").json()["value"] == []


@pytest.mark.parametrize("levels", [64, 65, 3000])
def test_the_nesting_limit_is_exact_and_says_how_deep(client: BatchClient, levels: int) -> None:
    """64 levels of objects and arrays pass the body check (the pool is then refused for what it holds);
    from 65 on the body is refused, saying how deep it is."""
    inner = levels - 1  # the body's own object is the first level
    body = b'{"id": "nest-pool", "metadata": ' + b"[" * inner + b"]" * inner + b"}"
    response = raw(client, "POST", "/pools", body)
    assert response.status_code == 400, response.text()
    message = response.json()["message"]["value"]
    if levels <= 64:
        assert "nested" not in message
    else:
        assert f"nested {levels} levels deep; at most 64" in message


def test_a_repeated_query_parameter_is_refused(client: BatchClient) -> None:
    response = raw(client, "GET", "/pools?maxresults=1&maxresults=1000")
    assert response.status_code == 400
    assert {"key": "QueryParameterName", "value": "maxresults"} in response.json()["values"]


def test_a_large_task_file_is_read_in_ranges_not_loaded(client: BatchClient, emulator: Any) -> None:
    assert (
        raw(
            client,
            "POST",
            "/pools",
            {"id": "big-pool", "vmSize": "s", "virtualMachineConfiguration": vm(), "targetDedicatedNodes": 1},
        ).status_code
        == 201
    )
    assert (
        raw(client, "POST", "/jobs", {"id": "big-job", "poolInfo": {"poolId": "big-pool"}}).status_code == 201
    )
    raw(client, "POST", "/jobs/big-job/tasks", {"id": "big", "commandLine": "/bin/sh -c 'echo done'"})
    wait_until(lambda: client.get_task("big-job", "big").state == "completed", 60, "task completed")
    node_id = client.get_task("big-job", "big").node_info.node_id
    stdout = (
        emulator.config.nodes_dir
        / "big-pool"
        / node_id
        / "workitems"
        / "big-job"
        / "job-1"
        / "big"
        / "stdout.txt"
    )
    size = 1536 * 1024 * 1024
    with stdout.open("r+b") as handle:  # a sparse 1.5 GB file ending in "z\n"
        handle.truncate(size - 2)
        handle.seek(size - 2)
        handle.write(b"z\n")
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    request = HttpRequest(
        "GET", f"/jobs/big-job/tasks/big/files/stdout.txt?{API}", headers={"ocp-range": "bytes=-2"}
    )
    tail = client.send_request(request, stream=True)
    assert tail.status_code == 200
    assert tail.read() == b"z\n"
    head = raw(client, "HEAD", "/jobs/big-job/tasks/big/files/stdout.txt")
    assert int(head.headers["Content-Length"]) == size
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024, f"reading 2 bytes grew the process by {grown_kib} KiB"
    os.truncate(stdout, 0)
