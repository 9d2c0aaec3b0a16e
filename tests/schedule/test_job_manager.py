"""The job manager program a schedule's runs start, run as Batch would start it, against a small fake of the
Batch endpoint on loopback: groups stay under 100 tasks and 1 MB, a 413 halves a group, TaskExists is success,
and a task still refused after the retries fails the program, naming it."""

from __future__ import annotations

import base64
import gzip
import json
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from batchrun.azure.job_manager import MAX_ENCODED_BYTES, encode_tasks, manager_task
from batchrun.errors import ApplyError


class FakeBatch:
    """Answers addtaskcollection: records the groups, refuses big ones with 413, some tasks as told."""

    def __init__(self, refuse_over: int = 10**9, server_error: frozenset[str] = frozenset()) -> None:
        self.groups: list[list[str]] = []
        self.refuse_over = refuse_over
        self.server_error = server_error
        self.tokens: set[str] = set()

    def answer(self, body: bytes, token: str) -> tuple[int, dict[str, Any]]:
        self.tokens.add(token)
        if len(body) > self.refuse_over:
            return 413, {"code": "RequestBodyTooLarge"}
        tasks = json.loads(body)["value"]
        self.groups.append([t["id"] for t in tasks])
        results = []
        for task in tasks:
            if task["id"] in self.server_error:
                results.append({"taskId": task["id"], "status": "servererror"})
            elif task["id"] == "exists":
                results.append(
                    {"taskId": task["id"], "status": "clienterror", "error": {"code": "TaskExists"}}
                )
            else:
                results.append({"taskId": task["id"], "status": "success"})
        return 200, {"value": results}


@pytest.fixture
def fake() -> Iterator[tuple[FakeBatch, str]]:
    batch = FakeBatch()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            status, answer = batch.answer(body, self.headers.get("Authorization", ""))
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield batch, f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def run_manager(url: str, tasks: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    spec = manager_task(tasks, "nightly")
    env = {
        "PATH": os.environ.get("PATH", ""),
        "AZ_BATCH_ACCOUNT_URL": url,
        "AZ_BATCH_JOB_ID": "nightly:job-1",
        "AZ_BATCH_AUTHENTICATION_TOKEN": "job-token",
        **{e["name"]: e["value"] for e in spec["environmentSettings"]},
    }
    # The command line as Batch runs it, with this interpreter standing in for the node's python3.
    command = spec["commandLine"].replace("python3 ", f"{sys.executable} ", 1)
    return subprocess.run(
        command, shell=True, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_tasks_are_added_in_groups_of_at_most_100_with_the_job_token(fake: tuple[FakeBatch, str]) -> None:
    batch, url = fake
    tasks = [{"id": f"t{i:03d}", "commandLine": "/bin/true"} for i in range(250)] + [{"id": "exists"}]
    done = run_manager(url, tasks)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "added 251 task(s) to job nightly:job-1"
    assert [len(group) for group in batch.groups] == [100, 100, 51]
    assert batch.tokens == {"Bearer job-token"}


def test_a_group_too_large_for_batch_is_halved(fake: tuple[FakeBatch, str]) -> None:
    batch, url = fake
    batch.refuse_over = 20_000
    tasks = [{"id": f"t{i}", "commandLine": "x" * 300} for i in range(100)]
    done = run_manager(url, tasks)
    assert done.returncode == 0, done.stderr
    assert sorted(t for group in batch.groups for t in group) == sorted(t["id"] for t in tasks)
    assert max(len(group) for group in batch.groups) < 100


def test_a_task_refused_after_the_retries_fails_the_run(
    fake: tuple[FakeBatch, str], monkeypatch: Any
) -> None:
    batch, url = fake
    batch.server_error = frozenset({"t1"})
    # Retries wait 1 + 2 + 4 + 8 + 16 s in all: the sleeps are made instant for the test.
    program = manager_task([{"id": "t0"}, {"id": "t1"}], "nightly")
    source = base64.b64decode(program["commandLine"].split("'")[3]).decode()
    assert "time.sleep(2 ** attempt)" in source
    fast = source.replace("time.sleep(2 ** attempt)", "time.sleep(0)")
    env = {
        "AZ_BATCH_ACCOUNT_URL": url,
        "AZ_BATCH_JOB_ID": "nightly:job-1",
        "AZ_BATCH_AUTHENTICATION_TOKEN": "job-token",
        "BATCHRUN_TASKS": program["environmentSettings"][0]["value"],
    }
    done = subprocess.run([sys.executable, "-c", fast], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "tasks not added: t1: server error after retries" in done.stderr
    assert len(batch.groups) == 6  # the first request and 5 retries of what is left


def test_task_bodies_too_large_for_a_node_environment_are_refused_at_apply() -> None:
    # Random ids do not compress: enough of them pass Linux's 128 KiB limit on one environment string.
    tasks = [{"id": base64.b64encode(os.urandom(48)).decode()} for _ in range(2000)]
    with pytest.raises(ApplyError, match=r"jobschedule/nightly: its 2000 task\(s\) take [\d,]+ bytes"):
        encode_tasks(tasks, "nightly")
    small = encode_tasks([{"id": "a"}], "nightly")
    assert len(small) < MAX_ENCODED_BYTES
    assert json.loads(gzip.decompress(base64.b64decode(small))) == [{"id": "a"}]
