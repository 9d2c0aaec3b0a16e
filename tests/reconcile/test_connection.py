"""``batchrun.connect()``: one target, its clients and their HTTP connections shared by several calls, against
the session's local target; the Batch endpoint is reached through a loopback TCP proxy that counts the
connections it accepts."""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest
from msgspec.structs import replace

import batchrun
from batchrun.errors import ConfigurationError
from batchrun.model import TaskSpec
from tests.reconcile.conftest import make_workload, tasks

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchrun.target import Target


class CountingProxy:
    """Passes bytes both ways between a loopback listener and ``upstream``; ``accepted`` counts the client
    connections it took."""

    def __init__(self, upstream: str) -> None:
        host, port = upstream.split("//", 1)[1].rstrip("/").rsplit(":", 1)
        self._upstream = (host, int(port))
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted = 0
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:  # closed
                return
            with self._lock:
                self.accepted += 1
            try:
                server = socket.create_connection(self._upstream)
            except OSError:  # the target is gone: this client is hung up on, the next ones still taken
                client.close()
                continue
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pipe(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def count(self) -> int:
        with self._lock:
            return self.accepted

    def close(self) -> None:
        self._listener.close()


@pytest.fixture()
def proxy(target: Target) -> Iterator[CountingProxy]:
    counting = CountingProxy(target.batch_url)
    yield counting
    counting.close()


def test_calls_through_one_connection_reuse_its_http_connections(
    target: Target, proxy: CountingProxy
) -> None:
    through_proxy = replace(target, batch_url=proxy.url)
    workload = make_workload("conn-reuse", tasks(3))

    def opened_by(plan: object) -> int:
        before = proxy.count()
        assert callable(plan)
        plan()
        return proxy.count() - before

    apart = [opened_by(lambda: batchrun.plan(workload, target=through_proxy)) for _ in range(3)]
    with batchrun.connect(through_proxy) as connection:
        shared = [opened_by(lambda: connection.plan(workload)) for _ in range(3)]
    assert all(count >= 1 for count in apart + shared[:1])  # each fresh set of clients connects
    # Later calls through the connection find its connections open; each batchrun.plan() makes its own.
    assert sum(shared[1:]) < sum(apart[1:]), (apart, shared)


def test_a_connection_plans_applies_and_destroys_and_announces_its_target_once(
    target: Target, batch_client: BatchClient
) -> None:
    workload = make_workload(
        "conn-cycle", [TaskSpec(f"t{i}", {"commandLine": "/bin/true"}) for i in range(3)]
    )
    said: list[str] = []
    with batchrun.connect(target, announce=said.append) as connection:
        assert connection.target.describe() == target.describe()
        try:
            first = connection.plan(workload)
            assert first.has_changes
            applied = connection.apply(workload)
            assert {change.address for change in applied.changes} >= {
                "pool/conn-cycle-pool",
                "job/conn-cycle-job",
            }
            assert sorted(t.id for t in batch_client.list_tasks("conn-cycle-job", select=["id"])) == [
                "t0",
                "t1",
                "t2",
            ]
            assert not connection.plan(workload).has_changes
        finally:
            connection.destroy(workload, confirm_replace=True)
        assert connection.plan(workload).has_changes  # gone again
    assert said == [target.describe()]  # announced once, when the connection was made


def test_a_closed_connection_says_so(target: Target) -> None:
    connection = batchrun.connect(target)
    connection.close()
    connection.close()  # twice is harmless
    with pytest.raises(ConfigurationError, match=r"closed; make another with batchrun\.connect"):
        connection.plan(make_workload("conn-closed", tasks(3)))
