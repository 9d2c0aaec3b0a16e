"""Creates that succeed while their response is lost: the SDK retries, gets 409 / TaskExists, and batchrun
checks the live resource instead of failing. A loopback proxy in front of the emulator forwards each request
and, the first time a job or a task collection is created, answers 503 instead of the real response."""

from __future__ import annotations

import http.client
import threading
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest

import batchrun
from batchrun.model import JobSpec, PoolSpec, TaskSpec, Workload

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchrun.target import Target

IMAGE = {
    "imageReference": {
        "publisher": "canonical",
        "offer": "ubuntu-24_04-lts",
        "sku": "server",
        "version": "latest",
    },
    "nodeAgentSKUId": "batch.node.ubuntu 24.04",
}


class LosingProxy:
    """Forwards to ``upstream``; drops the first response of each route in ``lose`` (answers 503 instead)."""

    def __init__(self, upstream: str, lose: set[str]) -> None:
        self.upstream = urlsplit(upstream)
        self.lose = set(lose)
        self.lost: list[str] = []
        self.lock = threading.Lock()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def do_any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                connection = http.client.HTTPConnection(
                    proxy.upstream.hostname or "", proxy.upstream.port, timeout=30
                )
                connection.request(self.command, self.path, body=body, headers=dict(self.headers))
                response = connection.getresponse()
                payload = response.read()
                route = f"{self.command} {self.path.split('?')[0].rsplit('/', 1)[-1]}"
                with proxy.lock:
                    drop = route in proxy.lose and 200 <= response.status < 300
                    if drop:
                        proxy.lose.discard(route)
                        proxy.lost.append(route)
                if drop:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("transfer-encoding", "connection", "content-length"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_any

            def log_message(self, format: str, *args: object) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> LosingProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)


@pytest.fixture()
def proxy(target: Target) -> Iterator[LosingProxy]:
    with LosingProxy(target.batch_url, {"POST jobs", "POST addtaskcollection"}) as running:
        yield running


def test_lost_create_responses_are_checked_against_live(
    target: Target, proxy: LosingProxy, batch_client: BatchClient
) -> None:
    workload = Workload(
        name="e2e-lost",
        manifest_path=Path("/nonexistent/e2e-lost.yaml"),
        digest="x",
        pool=PoolSpec("e2e-lost-pool", {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}),
        job=JobSpec(
            "e2e-lost-job",
            {"poolInfo": {"poolId": "e2e-lost-pool"}},
            tuple(TaskSpec(f"t{i}", {"commandLine": "/bin/true"}) for i in range(150)),
        ),
    )
    through_proxy = replace(target, batch_url=proxy.url)
    batchrun.apply(workload, target=through_proxy)
    assert sorted(proxy.lost) == ["POST addtaskcollection", "POST jobs"]  # both faults happened
    assert sum(1 for _ in batch_client.list_tasks("e2e-lost-job", select=["id"])) == 150
    assert not batchrun.plan(workload, target=target).has_changes
    batchrun.destroy(workload, target=target, confirm_replace=True)


def test_task_groups_over_the_request_size_limit_are_split(target: Target, batch_client: BatchClient) -> None:
    # 100 tasks of ~15 KB each make a 1.5 MB add request: Batch (and the emulator) answer 413
    # RequestBodyTooLarge, and batchrun must send that group again in halves instead of failing.
    large = [{"name": "PAYLOAD", "value": "x" * 15_000}]
    workload = Workload(
        name="e2e-large",
        manifest_path=Path("/nonexistent/e2e-large.yaml"),
        digest="x",
        pool=PoolSpec("e2e-large-pool", {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}),
        job=JobSpec(
            "e2e-large-job",
            {"poolInfo": {"poolId": "e2e-large-pool"}},
            tuple(
                TaskSpec(f"t{i}", {"commandLine": "/bin/true", "environmentSettings": large})
                for i in range(120)
            ),
        ),
    )
    try:
        batchrun.apply(workload, target=target)
        assert sum(1 for _ in batch_client.list_tasks("e2e-large-job", select=["id"])) == 120
        assert not batchrun.plan(workload, target=target).has_changes
    finally:
        batchrun.destroy(workload, target=target, confirm_replace=True)
