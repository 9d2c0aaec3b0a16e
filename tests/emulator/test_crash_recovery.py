"""``python -m batchrun.emulator`` stopped with SIGTERM mid-job and restarted on the same state folder.

SIGKILL mid-job through the local daemon is tests/local/test_crash_recovery.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential

from batchrun.local.azurite import AzuriteEndpoint
from tests.emulator.conftest import ACCOUNT, KEY, REPO, TOKEN, wait_until


class Daemon:
    def __init__(self, state_dir: Path, azurite: AzuriteEndpoint) -> None:
        self.state_dir = state_dir
        self.config_path = state_dir / "config.json"
        self.config_path.write_text(
            json.dumps(
                {
                    "state_dir": str(state_dir),
                    "host": "127.0.0.1",
                    "port": 0,
                    "account_name": ACCOUNT,
                    "account_key": KEY,
                    "token": TOKEN,
                    "subscription_id": "sub",
                    "resource_group": "rg",
                    "storage": {
                        "blob_endpoint": azurite.blob_url,
                        "account_name": azurite.account_name,
                        "account_key": azurite.account_key,
                    },
                    "max_running_tasks": 4,
                }
            )
        )
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> str:
        discovery = self.state_dir / "emulator.json"
        discovery.unlink(missing_ok=True)
        log = open(self.state_dir / "emulator.log", "ab")  # noqa: SIM115 - owned by the child
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batchrun.emulator", "--config", str(self.config_path)],
            stdout=log,
            stderr=log,
            cwd=REPO,
            start_new_session=True,
        )
        log.close()
        info = wait_until(
            lambda: discovery.exists() and json.loads(discovery.read_text()),
            30,
            "the emulator to write emulator.json",
        )
        assert info["pid"] == self.process.pid
        return str(info["url"])

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def terminate(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.kill()


@pytest.fixture
def daemon(tmp_path: Path, azurite: AzuriteEndpoint) -> Iterator[Daemon]:
    running = Daemon(tmp_path, azurite)
    try:
        yield running
    finally:
        running.terminate()


def test_sigterm_stops_gracefully_and_requeues_running_tasks(daemon: Daemon) -> None:
    url = daemon.start()
    client = BatchClient(url, AzureNamedKeyCredential(ACCOUNT, KEY))
    client.create_pool(
        models.BatchPoolCreateOptions(
            id="term-pool",
            vm_size="standard_d2",
            target_dedicated_nodes=1,
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu", sku="24_04"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
        )
    )
    client.create_job(
        models.BatchJobCreateOptions(id="term-job", pool_info=models.BatchPoolInfo(pool_id="term-pool"))
    )
    client.create_task("term-job", models.BatchTaskCreateOptions(id="sleeper", command_line="/bin/sleep 60"))
    wait_until(
        lambda: client.get_task("term-job", "sleeper").state == models.BatchTaskState.RUNNING, 30, "running"
    )
    assert daemon.process is not None
    daemon.process.terminate()
    assert daemon.process.wait(20) == 0
    assert not (daemon.state_dir / "emulator.json").exists()

    url = daemon.start()
    client = BatchClient(url, AzureNamedKeyCredential(ACCOUNT, KEY))
    sleeper = client.get_task("term-job", "sleeper")
    assert sleeper.execution_info.requeue_count == 1
    assert sleeper.state in (models.BatchTaskState.ACTIVE, models.BatchTaskState.RUNNING)


TGKILL = {"x86_64": 234, "aarch64": 131}.get(os.uname().machine)


@pytest.mark.skipif(TGKILL is None, reason="tgkill's system call number is known for x86_64 and aarch64")
def test_sigterm_taken_by_another_thread_stops_it_too(daemon: Daemon) -> None:
    """A process-wide SIGTERM reaches whichever thread the kernel picks; one taken by the HTTP thread, say,
    stops the emulator as one taken by the main thread does."""
    import ctypes

    daemon.start()
    assert daemon.process is not None
    pid = daemon.process.pid
    others = [int(tid) for tid in os.listdir(f"/proc/{pid}/task") if int(tid) != pid]
    assert others, "the emulator runs its HTTP server and scheduler in threads"
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.syscall(TGKILL, pid, others[0], signal.SIGTERM) == 0
    assert daemon.process.wait(10) == 0
