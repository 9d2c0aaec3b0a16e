"""Rerunning what changed after a workload has run, side by side with the full rerun it replaces.

1. A 10,000-task sweep with a merge (``taskIdRanges``), run to completion; then one sweep value is edited.
   batchrun plans (target: under 3 s) and reruns exactly 2 tasks: the edited one and the merge.
2. A one-task-per-file factory over 2,000 input files (each task reads only its file) with a merge, run to
   completion; then one file changes: exactly 2 tasks rerun.

The full rerun is what the same edit cost before tasks were content-addressed: every task of the job runs
again; its figure is the first, complete run of the same workload. Each step runs the CLI against a local
target started for the bench; wall and CPU time (this process's children) are printed together.

    .venv/bin/python bench/reruns.py [--tasks 10000] [--files 2000]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

POOL = """\
pool:
  id: {name}-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 2
  taskSlotsPerNode: 2
"""

SWEEP = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: {name}}}
variables: {{special: 42}}
{pool}job:
  id: {name}-job
  onAllTasksComplete: terminatejob
  tasks:
    - id: "${{i}}"
      foreach: {{i: {{range: [1, {tasks}]}}}}
      commandLine: /bin/sh -c "echo ${{i}}"
    - id: edited
      commandLine: /bin/sh -c "echo ${{special}}"
    - id: merge
      dependsOn: {{taskIds: [edited], taskIdRanges: [{{start: 1, end: {tasks}}}]}}
      commandLine: /bin/true
"""

PER_FILE = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: {name}}}
storage:
  inputs: [{{name: raw, source: ./raw, container: {name}-in, prefix: raw/}}]
{pool}job:
  id: {name}-job
  onAllTasksComplete: terminatejob
  tasks:
    - id: count-${{f.stem}}
      foreach: {{f: {{files: raw}}}}
      inputs: [{{name: raw, paths: ["${{f.path}}"]}}]
      commandLine: /bin/sh -c "wc -l < ${{f.blob}}"
    - id: merge
      dependsOn: {{tasks: ["count-*"]}}
      commandLine: /bin/true
"""


class Clock:
    """Wall time and the CPU time of finished child processes, for one step."""

    def __enter__(self) -> Clock:
        self.wall = time.perf_counter()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = usage.ru_utime + usage.ru_stime
        return self

    def __exit__(self, *_: Any) -> None:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.wall = time.perf_counter() - self.wall
        self.cpu = usage.ru_utime + usage.ru_stime - self.cpu

    def __str__(self) -> str:
        return f"{self.wall:.2f} s wall, {self.cpu:.2f} s CPU (client processes)"


def cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    run = subprocess.run(
        [sys.executable, "-m", "batchrun", *args], env=env, capture_output=True, text=True, check=False
    )
    if run.returncode not in (0, 2):
        raise SystemExit(f"batchrun {' '.join(args)} failed ({run.returncode}):\n{run.stdout}\n{run.stderr}")
    return run


def tasks_in_job(local: Any, job_id: str) -> int:
    from azure.batch import BatchClient
    from azure.core.credentials import AzureNamedKeyCredential

    client = BatchClient(local.batch_url, AzureNamedKeyCredential(local.account_name, local.account_key))
    try:
        return sum(1 for _ in client.list_tasks(job_id, select=["id"], max_results=1000))
    finally:
        client.close()


def scenario(env: dict[str, str], local: Any, manifest: Path, job_id: str, edit: Any, label: str) -> None:
    with Clock() as full:
        cli(env, "apply", str(manifest), "--auto-approve", "--wait")
    total = tasks_in_job(local, job_id)
    edit()
    with Clock() as planned:
        plan = cli(env, "plan", str(manifest), "--detailed-exitcode")
    with Clock() as rerun:
        cli(env, "apply", str(manifest), "--auto-approve", "--wait")
    ran = tasks_in_job(local, job_id)
    reasons = [line.strip() for line in plan.stdout.splitlines() if "will run" in line]
    print(f"{label}: {total} tasks")
    print(f"  full run (what a full rerun costs): {full}")
    print(f"  plan after the edit:                {planned}")
    print(f"  apply --wait after the edit:        {rerun} -> {ran} task(s) ran")
    for reason in reasons:
        print(f"    {reason}")
    print(f"  rerun / full run: {rerun.wall / full.wall:.3f}x wall")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--files", type=int, default=2_000)
    args = parser.parse_args()

    from batchrun.local.target import start, stop

    home = Path(tempfile.mkdtemp(prefix="batchrun-bench-"))
    work = Path(tempfile.mkdtemp(prefix="batchrun-bench-work-"))
    tools = Path(os.environ.get("BATCHRUN_TOOLS_DIR") or REPO / ".cache" / "tools")
    local = start(home, tools_dir=tools)
    env = {**os.environ, "BATCHRUN_HOME": str(home), "BATCHRUN_TOOLS_DIR": str(tools)}
    env.pop("AZURE_BATCH_ENDPOINT", None)
    try:
        sweep = work / "sweep.yaml"
        text = SWEEP.format(name="rerun-sweep", tasks=args.tasks, pool=POOL.format(name="rerun-sweep"))
        sweep.write_text(text, encoding="utf-8")

        def edit_sweep() -> None:
            sweep.write_text(text.replace("special: 42", "special: 43"), encoding="utf-8")

        scenario(env, local, sweep, "rerun-sweep-job", edit_sweep, "sweep with a merge")

        raw = work / "raw"
        raw.mkdir()
        for index in range(args.files):
            (raw / f"doc-{index:05d}.txt").write_text(f"line {index}\n", encoding="utf-8")
        per_file = work / "per-file.yaml"
        per_file.write_text(
            PER_FILE.format(name="rerun-files", pool=POOL.format(name="rerun-files")), encoding="utf-8"
        )

        def edit_file() -> None:
            with (raw / "doc-00005.txt").open("a", encoding="utf-8") as handle:
                handle.write("one more line\n")

        scenario(env, local, per_file, "rerun-files-job", edit_file, "one task per input file with a merge")
    finally:
        stop(home)
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
