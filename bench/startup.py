"""Start-up of the commands on a tiny manifest, side by side with their floors, alternated, medians, CPU next
to wall time (each a fresh process, as a user runs it).

1. ``batchrun validate tiny.yaml`` vs a process that imports what validating needs (yaml, jsonschema, click).
   Goal: within 1.2x.
2. ``batchrun plan tiny.yaml`` with the local target up vs a process that makes the same reads with the bare
   SDKs (GET pool, GET job, the job's task list, the record of results blob). Goal: within 1.2x.

    .venv/bin/python bench/startup.py [--rounds 7]

The package's bytecode is compiled first (as pip does when it installs a wheel): with PYTHONDONTWRITEBYTECODE
set, a module edited since its last compile would otherwise be compiled again by every measured process.
"""

from __future__ import annotations

import argparse
import compileall
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from batchrun.local.target import LocalTarget

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MANIFEST = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {name: tiny}
pool:
  id: tiny-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 0
job:
  id: tiny-job
  tasks:
    - {id: t1, commandLine: /bin/true}
"""

IMPORTS_FLOOR = "import yaml, jsonschema, click"

# The reads a plan of the tiny manifest makes, with the bare SDKs: what it cannot do without.
READS_FLOOR = """
import os, sys
from azure.batch import BatchClient
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient
key = AzureNamedKeyCredential(os.environ["AZURE_BATCH_ACCOUNT"], os.environ["AZURE_BATCH_ACCESS_KEY"])
batch = BatchClient(os.environ["AZURE_BATCH_ENDPOINT"], key)
blob = BlobServiceClient.from_connection_string(os.environ["AZURE_STORAGE_CONNECTION_STRING"])
batch.get_pool("tiny-pool")
batch.get_job("tiny-job")
list(batch.list_tasks("tiny-job"))
try:
    blob.get_blob_client("batchrun-state", "tiny/results.json.gz").download_blob().readall()
except ResourceNotFoundError:
    pass
"""


def timed(command: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def compare(
    label: str,
    ours: list[str],
    floor: list[str],
    envs: tuple[dict[str, str], dict[str, str]],
    cwd: Path,
    rounds: int,
) -> None:
    mine: list[tuple[float, float]] = []
    base: list[tuple[float, float]] = []
    for _ in range(rounds):  # alternated, so load changes hit both alike
        mine.append(timed(ours, envs[0], cwd))
        base.append(timed(floor, envs[1], cwd))
    wall, cpu = statistics.median(w for w, _ in mine), statistics.median(c for _, c in mine)
    floor_wall, floor_cpu = statistics.median(w for w, _ in base), statistics.median(c for _, c in base)
    print(
        f"{label}: batchrun {wall:.2f} s (CPU {cpu:.2f} s) vs floor {floor_wall:.2f} s "
        f"(CPU {floor_cpu:.2f} s) -> {wall / floor_wall:.2f}x (CPU {cpu / floor_cpu:.2f}x); goal <= 1.2x"
    )


def batch_requests(local: LocalTarget, command: list[str], env: dict[str, str], cwd: Path) -> dict[str, int]:
    """The Batch requests ``command`` makes, by route, as the emulator counts them (blobs are Azurite's)."""
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.core.rest import HttpRequest

    credential = AzureNamedKeyCredential(local.account_name, local.account_key)
    with BatchClient(local.batch_url, credential) as client:
        client.send_request(HttpRequest("POST", "/_emulator/requests/reset")).raise_for_status()
        subprocess.run(command, env=env, cwd=cwd, check=True, capture_output=True)
        counts = client.send_request(HttpRequest("GET", "/_emulator/requests")).json()["by_route"]
    return {route: count for route, count in counts.items() if "/_emulator/" not in route}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    from batchrun.local.target import start, stop

    compileall.compile_dir(REPO / "batchrun", quiet=1)

    home = Path(tempfile.mkdtemp(prefix="batchrun-bench-"))
    work = Path(tempfile.mkdtemp(prefix="batchrun-startup-"))
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")
    local = start(home, tools_dir=tools)
    try:
        manifest = work / "tiny.yaml"
        manifest.write_text(MANIFEST)
        env = {**os.environ, "BATCHRUN_HOME": str(home), "BATCHRUN_TOOLS_DIR": str(tools)}
        # The floor reads the same target with the bare SDKs (batchrun itself finds it in BATCHRUN_HOME).
        floor_env = {
            **env,
            "AZURE_BATCH_ENDPOINT": local.batch_url,
            "AZURE_BATCH_ACCOUNT": local.account_name,
            "AZURE_BATCH_ACCESS_KEY": local.account_key,
            "AZURE_STORAGE_CONNECTION_STRING": local.connection_string,
        }
        python = sys.executable
        subprocess.run(
            [python, "-m", "batchrun", "apply", str(manifest), "--auto-approve"], env=env, check=True
        )
        print(f"load before: {os.getloadavg()[0]:.1f}; rounds: {args.rounds}")
        compare(
            "validate of a tiny manifest",
            [python, "-m", "batchrun", "validate", str(manifest)],
            [python, "-c", IMPORTS_FLOOR],
            (env, env),
            work,
            args.rounds,
        )
        compare(
            "plan of a tiny manifest (target up)",
            [python, "-m", "batchrun", "plan", str(manifest)],
            [python, "-c", READS_FLOOR],
            (env, floor_env),
            work,
            args.rounds,
        )
        ours = batch_requests(local, [python, "-m", "batchrun", "plan", str(manifest)], env, work)
        floor = batch_requests(local, [python, "-c", READS_FLOOR], floor_env, work)
        routes = ", ".join(f"{route} x{count}" for route, count in ours.items())
        print(f"Batch requests: plan {sum(ours.values())} ({routes}); floor {sum(floor.values())}")
        print(f"load after: {os.getloadavg()[0]:.1f}")
    finally:
        stop(home)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
