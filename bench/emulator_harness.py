"""What the emulator benchmarks share: the emulator as its own process (its CPU time, its children's and its
memory read from /proc), Shared Key signed requests, a pool with one idle node, and ``addtaskcollection`` of
plain JSON bodies. Used by ``bench/emulator_tasks.py``."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timezone
from email.utils import format_datetime
from pathlib import Path
from urllib.parse import urlsplit

import requests
from azure.batch import BatchClient, models
from azure.core.credentials import AzureNamedKeyCredential

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from batchrun.emulator import auth  # noqa: E402
from batchrun.local.azurite import AzuriteEndpoint  # noqa: E402

ACCOUNT = "benchacct"
KEY = base64.b64encode(os.urandom(32)).decode()
API = "api-version=2025-06-01"
TICK = os.sysconf("SC_CLK_TCK")


class Emulator:
    """The emulator as a separate process, with its CPU time and memory read from /proc."""

    def __init__(self, state: Path, storage: AzuriteEndpoint, cap: int, checkout: Path = REPO) -> None:
        self.state = state
        self.checkout = checkout  # whose batchrun runs (``python -m`` imports it from its working folder)
        self.config = state / "config.json"
        self.config.write_text(
            json.dumps(
                {
                    "state_dir": str(state),
                    "account_name": ACCOUNT,
                    "account_key": KEY,
                    "token": "bench-token",
                    "subscription_id": "sub",
                    "resource_group": "rg",
                    "max_running_tasks": cap,
                    "storage": {
                        "blob_endpoint": storage.blob_url,
                        "account_name": storage.account_name,
                        "account_key": storage.account_key,
                    },
                }
            )
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.url = ""
        self.own: list[float] = []  # the emulator process's own CPU seconds in each run, without its children

    def start(self) -> None:
        discovery = self.state / "emulator.json"
        discovery.unlink(missing_ok=True)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "batchrun.emulator", "--config", str(self.config)],
            cwd=self.checkout,
            stderr=open(self.state / "emulator.log", "ab"),  # noqa: SIM115 - owned by the child
        )
        deadline = time.monotonic() + 300
        while not discovery.exists():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start; see {self.state / 'emulator.log'}")
            time.sleep(0.05)
        time.sleep(0.05)
        self.url = json.loads(discovery.read_text())["url"]

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            self.process.wait(timeout=120)

    def cpu(self) -> float:
        """CPU seconds so far of the emulator and of every process under it: the ones it reaped (in its own
        counters) and the live ones with what they reaped (the spawn server and the task processes it ran)."""
        assert self.process is not None
        return sum(_cpu_ticks(pid) for pid in _process_tree(self.process.pid)) / TICK

    def own_cpu(self) -> float:
        """CPU seconds so far of the emulator process itself (its threads), without any child process."""
        assert self.process is not None
        return own_cpu_seconds(self.process.pid)

    def rss_mib(self) -> float:
        assert self.process is not None
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise RuntimeError("no VmRSS")

    def client(self) -> BatchClient:
        return BatchClient(self.url, AzureNamedKeyCredential(ACCOUNT, KEY))


def thread_nanoseconds(pid: int) -> dict[str, int]:
    """Time on a CPU so far of each live thread of ``pid``, by thread id (``/proc/PID/task/*/schedstat``, in
    nanoseconds, where ``stat`` counts 10 ms ticks)."""
    found: dict[str, int] = {}
    for thread in os.listdir(f"/proc/{pid}/task"):
        try:
            found[thread] = int(Path(f"/proc/{pid}/task/{thread}/schedstat").read_text().split()[0])
        except (OSError, ValueError, IndexError):  # the thread ended between the listing and the read
            continue
    return found


def _cpu_fields(pid: int | None) -> list[int]:
    """utime, stime, cutime and cstime of process ``pid`` in clock ticks (zeros when it cannot be read:
    gone, or no pid)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return [0, 0, 0, 0]
    return [int(value) for value in fields[11:15]]


def own_cpu_seconds(pid: int | None) -> float:
    """CPU seconds so far (user and system) of the process ``pid`` itself, without its children; 0 when it
    cannot be read (gone, or no pid)."""
    return sum(_cpu_fields(pid)[:2]) / TICK


def _cpu_ticks(pid: int) -> int:
    """utime + stime + cutime + cstime of a live process (0 once it is gone)."""
    return sum(_cpu_fields(pid))


def _process_tree(pid: int) -> list[int]:
    """``pid`` and its live descendants (from each thread's ``children`` list in /proc)."""
    found, pending = [], [pid]
    while pending:
        current = pending.pop()
        found.append(current)
        try:
            threads = os.listdir(f"/proc/{current}/task")
        except FileNotFoundError:
            continue
        for thread in threads:
            try:
                pending.extend(
                    int(child)
                    for child in Path(f"/proc/{current}/task/{thread}/children").read_text().split()
                )
            except FileNotFoundError:
                continue
    return found


def signed(session: requests.Session, method: str, url: str, body: bytes = b"") -> requests.Response:
    parts = urlsplit(url)
    headers = {"ocp-date": format_datetime(datetime.now(timezone.utc), usegmt=True)}
    if method != "GET":
        headers["Content-Type"] = "application/json; odata=minimalmetadata"
        headers["Content-Length"] = str(len(body))
    text = auth.string_to_sign(method, headers, parts.path, parts.query, ACCOUNT)
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{auth.sign(base64.b64decode(KEY), text)}"
    response = session.request(method, url, headers=headers, data=body or None, timeout=300)
    response.raise_for_status()
    return response


def vm() -> models.VirtualMachineConfiguration:
    return models.VirtualMachineConfiguration(
        image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="24_04"),
        node_agent_sku_id="batch.node.ubuntu 24.04",
    )


def make_pool(client: BatchClient, pool_id: str, slots: int) -> None:
    client.create_pool(
        models.BatchPoolCreateOptions(
            id=pool_id,
            vm_size="standard_d2",
            virtual_machine_configuration=vm(),
            target_dedicated_nodes=1,
            task_slots_per_node=slots,
        )
    )
    while not any(node.state == models.BatchNodeState.IDLE for node in client.list_nodes(pool_id)):
        time.sleep(0.05)


def add_tasks(url: str, job_id: str, bodies: list[dict[str, object]], threads: int = 4) -> None:
    """``addtaskcollection`` with plain JSON, 100 tasks a request, ``threads`` requests at a time."""
    chunks = [bodies[start : start + 100] for start in range(0, len(bodies), 100)]
    lock = threading.Lock()

    def worker() -> None:
        session = requests.Session()
        while True:
            with lock:
                if not chunks:
                    return
                chunk = chunks.pop()
            payload = json.dumps({"value": chunk}).encode()
            answer = signed(session, "POST", f"{url}/jobs/{job_id}/addtaskcollection?{API}", payload).json()
            failed = [item for item in answer["value"] if item.get("status") != "success"]
            assert not failed, failed[:1]

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
