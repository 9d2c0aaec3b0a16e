"""Benchmark of the local Batch emulator, each figure side by side with a baseline measured in the same run.

1. Listing 10,000 tasks in pages of 1,000: the azure-batch SDK's ``list_tasks`` against the emulator,
   compared with raw signed HTTP GETs of the same pages (the wire without SDK deserialisation) and with a
   direct read of the same rows from the emulator's SQLite file (the floor: storage only, no HTTP).
2. Running 500 trivial tasks (``/bin/true``) on 4 slots (1 node x 4 slots, local cap 4), from submission to
   the last completion, compared with ``xargs -P 4`` running the same 500 commands.

Run: ``.venv/bin/python bench/emulator_tasks.py`` (starts Azurite and an in-process emulator in a temp dir).
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
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
from batchrun.emulator.config import EmulatorConfig, StorageConfig  # noqa: E402
from batchrun.emulator.server import EmulatorServer  # noqa: E402
from batchrun.local.azurite import start_azurite, stop_process  # noqa: E402

ACCOUNT = "benchacct"
KEY = base64.b64encode(os.urandom(32)).decode()
LIST_TASKS = 10_000
PAGE = 1_000
RUN_TASKS = 500
SLOTS = 4


def vm() -> models.VirtualMachineConfiguration:
    return models.VirtualMachineConfiguration(
        image_reference=models.BatchVmImageReference(publisher="canonical", offer="ubuntu", sku="24_04"),
        node_agent_sku_id="batch.node.ubuntu 24.04",
    )


def signed_get(session: requests.Session, url: str) -> requests.Response:
    parts = urlsplit(url)
    headers = {"ocp-date": format_datetime(datetime.now(timezone.utc), usegmt=True)}
    text = auth.string_to_sign("GET", headers, parts.path, parts.query, ACCOUNT)
    headers["Authorization"] = f"SharedKey {ACCOUNT}:{auth.sign(base64.b64decode(KEY), text)}"
    return session.get(url, headers=headers, timeout=60)


def bench_listing(server: EmulatorServer, client: BatchClient, db_path: Path) -> None:
    client.create_job(
        models.BatchJobCreateOptions(id="list-job", pool_info=models.BatchPoolInfo(pool_id="none"))
    )
    started = time.perf_counter()
    client.create_tasks(
        "list-job",
        [
            models.BatchTaskCreateOptions(
                id=f"task-{index:05d}",
                command_line=f"/bin/echo {index}",
                environment_settings=[models.EnvironmentSetting(name="INDEX", value=str(index))],
            )
            for index in range(LIST_TASKS)
        ],
        max_concurrency=4,
    )
    print(f"  submitted {LIST_TASKS} tasks with create_tasks in {time.perf_counter() - started:.2f} s")

    sdk_pages: list[float] = []
    page_start = time.perf_counter()
    count = 0
    for page in client.list_tasks("list-job", max_results=PAGE).by_page():
        count += sum(1 for _ in page)
        now = time.perf_counter()
        sdk_pages.append(now - page_start)
        page_start = now
    assert count == LIST_TASKS, count

    raw_pages: list[float] = []
    session = requests.Session()
    url: str | None = f"{server.url}/jobs/list-job/tasks?api-version=2025-06-01&maxresults={PAGE}"
    raw_count = 0
    while url:
        page_start = time.perf_counter()
        body = signed_get(session, url).json()
        raw_pages.append(time.perf_counter() - page_start)
        raw_count += len(body["value"])
        url = body.get("odata.nextLink")
    assert raw_count == LIST_TASKS, raw_count

    store_pages: list[float] = []
    connection = sqlite3.connect(str(db_path))
    marker = ""
    while True:
        page_start = time.perf_counter()
        rows = connection.execute(
            "SELECT id, body FROM tasks WHERE parent = ? AND id > ? ORDER BY id LIMIT ?",
            ("list-job", marker, PAGE),
        ).fetchall()
        [json.loads(body) for _, body in rows]
        store_pages.append(time.perf_counter() - page_start)
        if len(rows) < PAGE:
            break
        marker = rows[-1][0]
    connection.close()
    store_pages = store_pages[: len(sdk_pages)]

    sdk, raw, store = (statistics.median(pages) for pages in (sdk_pages, raw_pages, store_pages))
    print(
        f"  per 1,000-task page (median of {len(sdk_pages)}): SDK list_tasks {sdk * 1000:.1f} ms, "
        f"raw HTTP {raw * 1000:.1f} ms, SQLite read + JSON decode {store * 1000:.1f} ms"
    )
    print(f"  worst SDK page {max(sdk_pages) * 1000:.1f} ms; all 10,000 via SDK {sum(sdk_pages):.2f} s")
    print(f"  ratios: SDK / raw HTTP = {sdk / raw:.2f}x, raw HTTP / store read = {raw / store:.2f}x")


def bench_running(client: BatchClient) -> tuple[float, float]:
    client.create_pool(
        models.BatchPoolCreateOptions(
            id="run-pool",
            vm_size="standard_d2",
            virtual_machine_configuration=vm(),
            target_dedicated_nodes=1,
            task_slots_per_node=SLOTS,
        )
    )
    while not any(node.state == models.BatchNodeState.IDLE for node in client.list_nodes("run-pool")):
        time.sleep(0.05)
    client.create_job(
        models.BatchJobCreateOptions(id="run-job", pool_info=models.BatchPoolInfo(pool_id="run-pool"))
    )
    tasks = [
        models.BatchTaskCreateOptions(id=f"run-{index:04d}", command_line="/bin/true")
        for index in range(RUN_TASKS)
    ]
    started = time.perf_counter()
    client.create_tasks("run-job", tasks, max_concurrency=2)
    while client.get_job_task_counts("run-job").task_counts.completed < RUN_TASKS:
        time.sleep(0.02)
    emulator_seconds = time.perf_counter() - started
    counts = client.get_job_task_counts("run-job").task_counts
    assert counts.succeeded == RUN_TASKS, counts

    commands = "\n".join("/bin/true" for _ in range(RUN_TASKS)) + "\n"
    started = time.perf_counter()
    subprocess.run(["xargs", "-P", str(SLOTS), "-I{}", "sh", "-c", "{}"], input=commands.encode(), check=True)
    xargs_seconds = time.perf_counter() - started
    return emulator_seconds, xargs_seconds


def main() -> None:
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")
    with tempfile.TemporaryDirectory(prefix="batchrun-bench-") as folder:
        state = Path(folder)
        azurite, endpoint = start_azurite(tools, state / "azurite")
        config = EmulatorConfig(
            state_dir=state / "emulator",
            account_name=ACCOUNT,
            account_key=KEY,
            token="bench-token",
            subscription_id="sub",
            resource_group="rg",
            storage=StorageConfig(endpoint.blob_url, endpoint.account_name, endpoint.account_key),
            max_running_tasks=SLOTS,
        )
        server = EmulatorServer(config)
        try:
            server.start()
            client = BatchClient(server.url, AzureNamedKeyCredential(ACCOUNT, KEY))
            print(f"machine: {os.cpu_count()} CPUs; emulator at {server.url}")
            print(f"1. listing {LIST_TASKS:,} tasks, pages of {PAGE:,}")
            bench_listing(server, client, config.db_path)
            print(f"2. running {RUN_TASKS} x /bin/true on {SLOTS} slots")
            emulator_seconds, xargs_seconds = bench_running(client)
            print(
                f"  emulator (submit to last completion): {emulator_seconds:.2f} s "
                f"({emulator_seconds / RUN_TASKS * 1000:.1f} ms/task, "
                f"{RUN_TASKS / emulator_seconds:.0f} tasks/s)"
            )
            print(
                f"  xargs -P {SLOTS}: {xargs_seconds:.2f} s ({xargs_seconds / RUN_TASKS * 1000:.2f} ms/task)"
            )
            print(f"  ratio emulator / xargs = {emulator_seconds / xargs_seconds:.1f}x")
        finally:
            server.stop()
            stop_process(azurite)


if __name__ == "__main__":
    main()
