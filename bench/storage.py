"""Storage inputs side by side with their floors, alternated, medians, CPU next to wall time.

1. Unchanged re-apply of N x SIZE MB input files (default 20 x 50 MB): ``batchrun plan`` of the workload (the
   hash cache: stat only) vs ``md5sum`` of the same files (what hashing them costs) and vs the same plan with
   ``BATCHRUN_HASH_CACHE=off``. Goal: under 0.3 s of work beyond a plan with no inputs.
2. First upload of the same files: ``batchrun apply`` vs a bare azure-storage-blob loop uploading them with
   the same concurrency (8 files at a time, each hashed for its Content-MD5), each its own process. Goal:
   within 1.05x. No task reads the input, so the plan leaves the new files to their uploads to hash.
   ``--read-by-a-task`` adds a job whose one task reads the input (on a pool of no nodes): the plan then
   hashes every file before the first upload, for the task's digest.

    .venv/bin/python bench/storage.py [--files 20] [--size-mb 50] [--rounds 3] [--read-by-a-task]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

MANIFEST = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: {name}}}
storage:
  inputs: [{{name: data, source: ./data, container: {name}-in, prefix: data/}}]
"""
READ_BY_A_TASK = """\
pool:
  id: {name}-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 0
job:
  id: {name}-job
  tasks:
    - {{id: reads, inputs: [data], commandLine: /bin/true}}
"""


def children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    cpu, wall = children_cpu(), time.perf_counter()
    run = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if run.returncode not in (0, 2):
        raise SystemExit(f"{' '.join(command)} failed:\n{run.stdout}\n{run.stderr}")
    return time.perf_counter() - wall, children_cpu() - cpu


def bare_upload(connection: str, container: str, files: list[Path]) -> None:
    """The floor, run as its own process like ``batchrun apply``: hash each file, then upload it with its
    Content-MD5, 8 files at a time, with the bare azure-storage-blob SDK."""
    from azure.storage.blob import BlobServiceClient, ContentSettings

    service = BlobServiceClient.from_connection_string(connection, api_version="2025-11-05")
    service.create_container(container)
    client = service.get_container_client(container)

    def upload(path: Path) -> None:
        digest = hashlib.md5(usedforsecurity=False)
        with path.open("rb") as handle:
            while chunk := handle.read(1024 * 1024):
                digest.update(chunk)
        with path.open("rb") as handle:
            client.upload_blob(
                f"data/{path.name}",
                handle,
                overwrite=True,
                content_settings=ContentSettings(content_md5=bytearray(digest.digest())),
            )

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(upload, files))


def timed_bare_upload(connection: str, container: str, files: list[Path]) -> tuple[float, float]:
    from azure.storage.blob import BlobServiceClient

    command = [sys.executable, __file__, "--bare-upload", container, *map(str, files)]
    result = timed(command, {**os.environ, "BENCH_CONNECTION": connection})
    BlobServiceClient.from_connection_string(connection).delete_container(container)
    return result


def show(label: str, ours: list[tuple[float, float]], floor: list[tuple[float, float]], name: str) -> None:
    mine = statistics.median(w for w, _ in ours), statistics.median(c for _, c in ours)
    base = statistics.median(w for w, _ in floor), statistics.median(c for _, c in floor)
    print(
        f"{label}: batchrun {mine[0]:.2f} s wall / {mine[1]:.2f} s CPU vs {name} {base[0]:.2f} s / "
        f"{base[1]:.2f} s CPU -> {mine[0] / base[0]:.2f}x wall"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--files", type=int, default=20)
    parser.add_argument("--size-mb", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--read-by-a-task", action="store_true")
    parser.add_argument("--bare-upload", nargs="+", metavar=("CONTAINER", "FILE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.bare_upload:
        container, *paths = args.bare_upload
        bare_upload(os.environ["BENCH_CONNECTION"], container, [Path(path) for path in paths])
        return

    from batchrun.local.target import start, stop

    home = Path(tempfile.mkdtemp(prefix="batchrun-bench-"))
    work = Path(tempfile.mkdtemp(prefix="batchrun-bench-work-"))
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")
    local: Any = start(home, tools_dir=tools)
    env = {
        **os.environ,
        "BATCHRUN_HOME": str(home),
        "BATCHRUN_TOOLS_DIR": str(tools),
        "BATCHRUN_CACHE_DIR": str(work / "cache"),
    }
    try:
        data = work / "data"
        data.mkdir()
        files = []
        for index in range(args.files):
            path = data / f"part-{index:03d}.bin"
            with path.open("wb") as handle:
                for _ in range(args.size_mb):
                    handle.write(os.urandom(1024 * 1024))
            files.append(path)
        old = time.time() - 3600
        for path in files:
            os.utime(path, (old, old))
        cli = [sys.executable, "-m", "batchrun"]
        uploads: list[tuple[float, float]] = []
        bare: list[tuple[float, float]] = []
        for round_number in range(args.rounds):
            name = f"bench-store{round_number}"
            manifest = work / f"{name}.yaml"
            text = MANIFEST + (READ_BY_A_TASK if args.read_by_a_task else "")
            manifest.write_text(text.format(name=name), encoding="utf-8")
            if round_number % 2:
                bare.append(timed_bare_upload(local.connection_string, f"bare{round_number}", files))
                uploads.append(timed([*cli, "apply", str(manifest), "--auto-approve"], env))
            else:
                uploads.append(timed([*cli, "apply", str(manifest), "--auto-approve"], env))
                bare.append(timed_bare_upload(local.connection_string, f"bare{round_number}", files))
        label = "first upload, read by a task" if args.read_by_a_task else "first upload"
        show(label, uploads, bare, "bare azure-storage-blob loop (8 threads)")

        manifest = work / "bench-store0.yaml"
        empty = work / "empty.yaml"
        empty.write_text("apiVersion: batchrun/v1\nkind: Workload\nmetadata: {name: bench-empty}\n", "utf-8")
        cached, uncached, md5sum, nothing = [], [], [], []
        for _ in range(args.rounds):
            cached.append(timed([*cli, "plan", str(manifest), "--detailed-exitcode"], env))
            off = {**env, "BATCHRUN_HASH_CACHE": "off"}
            uncached.append(timed([*cli, "plan", str(manifest), "--detailed-exitcode"], off))
            md5sum.append(timed(["md5sum", *map(str, files)], env))
            nothing.append(timed([*cli, "plan", str(empty)], env))
        show("unchanged re-plan, hash cache on", cached, md5sum, "md5sum of the files")
        show("unchanged re-plan, hash cache off", uncached, md5sum, "md5sum of the files")
        show("unchanged re-plan, hash cache on", cached, nothing, "a plan with no inputs")
        extra = statistics.median(w for w, _ in cached) - statistics.median(w for w, _ in nothing)
        print(f"work of an unchanged input beyond a plan without inputs: {extra:.2f} s (goal < 0.3 s)")
    finally:
        stop(home)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
