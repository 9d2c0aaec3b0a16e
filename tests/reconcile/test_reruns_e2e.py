"""A workload that has already run, through the CLI on the local target: each edit runs exactly the tasks it
should (counted from the emulator's jobs, not from the plan text), and the next plan finds nothing to do."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from batchrun.cli import exit_codes
from tests.reconcile.conftest import RequestCounter

if TYPE_CHECKING:
    from azure.batch import BatchClient

REPO = Path(__file__).resolve().parents[2]

MANIFEST = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {name: NAME}
variables: {greeting: hello}
storage:
  inputs: [{name: data, source: ./data, container: NAME-in, prefix: data/}]
  outputs: {container: NAME-out}
packages: [{id: NAME-tools, version: "VERSION", source: ./tools}]
pool:
  id: NAME-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 1
  taskSlotsPerNode: 2
  packages: [NAME-tools]
job:
  id: NAME-job
  onAllTasksComplete: terminatejob
  constraints: {maxTaskRetryCount: RETRIES}
  tasks:
    - id: greet-${i}
      foreach: {i: [1, 2, 3], word: WORDS}
      zip: true
      commandLine: /bin/sh -c "echo ${word} ${i} $$(cat data/names.txt | wc -l) > out-${i}.txt"
      inputs: [data]
      outputs: [{pattern: "out-*.txt", path: "greet/${i}/"}]
    - id: merge
      dependsOn: {tasks: ["greet-*"]}
      commandLine: /bin/sh -c "echo merged"
"""


def write(
    folder: Path, name: str, *, retries: int = 1, version: str = "1.0", words: str = "[hi, hi, hi]"
) -> Path:
    text = (
        MANIFEST.replace("NAME", name)
        .replace("VERSION", version)
        .replace("RETRIES", str(retries))
        .replace("WORDS", words)
    )
    path = folder / "workload.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def setup(folder: Path, name: str) -> Path:
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "names.txt").write_text("Ada\nGrace\n", encoding="utf-8")
    (folder / "tools").mkdir()
    (folder / "tools" / "tool.sh").write_text("echo tool v1\n", encoding="utf-8")
    return write(folder, name)


def batchrun(env: dict[str, str], *args: str, timeout: float = 240) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchrun", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def apply_wait(env: dict[str, str], manifest: Path) -> subprocess.CompletedProcess[str]:
    run = batchrun(env, "apply", str(manifest), "--auto-approve", "--wait", "--timeout", "3m")
    assert run.returncode == 0, run.stdout + run.stderr
    return run


def tasks_run(batch_client: BatchClient, job_id: str) -> set[str]:
    """The tasks the job's latest run holds: a run's job holds exactly the tasks that ran in it."""
    return {t.id for t in batch_client.list_tasks(job_id, select=["id", "state"])}


def assert_converged(env: dict[str, str], manifest: Path) -> None:
    again = batchrun(env, "plan", str(manifest), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert "No changes." in again.stdout


def test_edits_after_a_run_rerun_exactly_what_changed(
    local_target_env: dict[str, str],
    batch_client: BatchClient,
    requests_counter: RequestCounter,
    tmp_path: Path,
) -> None:
    name = "rr-edit"
    manifest = setup(tmp_path, name)
    job = f"{name}-job"
    apply_wait(local_target_env, manifest)
    assert tasks_run(batch_client, job) == {"greet-1", "greet-2", "greet-3", "merge"}

    # A job-level edit on the completed job: nothing runs, no error, and the plan is clean afterwards.
    write(tmp_path, name, retries=2)
    run = apply_wait(local_target_env, manifest)
    assert "job-level changes apply when it next runs tasks" in run.stdout
    assert tasks_run(batch_client, job) == {"greet-1", "greet-2", "greet-3", "merge"}
    assert_converged(local_target_env, manifest)

    # One task's command: that task and the merge downstream of it.
    write(tmp_path, name, retries=2, words="[hi, bye, hi]")
    run = apply_wait(local_target_env, manifest)
    assert "task/rr-edit-job/greet-2 will run (definition changed)" in run.stdout
    assert "task/rr-edit-job/merge will run (upstream greet-2 reruns)" in run.stdout
    assert tasks_run(batch_client, job) == {"greet-2", "merge"}
    assert_converged(local_target_env, manifest)
    # The job holds 2 of the 4 tasks; the other results are on record, so live is in sync.
    status = batchrun(local_target_env, "status", str(manifest))
    assert "live matches the manifest" in status.stdout, status.stdout + status.stderr
    assert "4 of 4 tasks on record (4 succeeded, 0 failed)" in status.stdout, status.stdout

    # One input file: the tasks reading it and the merge.
    (tmp_path / "data" / "names.txt").write_text("Ada\nGrace\nLinus\n", encoding="utf-8")
    run = apply_wait(local_target_env, manifest)
    assert "(input data/names.txt changed)" in run.stdout
    assert tasks_run(batch_client, job) == {"greet-1", "greet-2", "greet-3", "merge"}
    assert_converged(local_target_env, manifest)

    # New package content under a new version: every task can use the pool's package, so all run.
    (tmp_path / "tools" / "tool.sh").write_text("echo tool v2\n", encoding="utf-8")
    write(tmp_path, name, retries=2, words="[hi, bye, hi]", version="1.1")
    run = apply_wait(local_target_env, manifest)
    assert f"(package {name}-tools 1.0 -> 1.1)" in run.stdout
    assert tasks_run(batch_client, job) == {"greet-1", "greet-2", "greet-3", "merge"}
    assert_converged(local_target_env, manifest)

    # Nothing changed: no write and few requests.
    requests_counter.reset()
    run = batchrun(local_target_env, "apply", str(manifest), "--auto-approve")
    assert run.returncode == 0 and "Nothing to apply." in run.stderr, run.stdout + run.stderr
    counted = requests_counter.snapshot()
    assert counted["writes"] == 0 and counted["total"] < 30, counted

    # Outputs are the current results: the rerun task's and the carried-over ones alike.
    out = tmp_path / "outputs"
    fetched = batchrun(local_target_env, "outputs", str(manifest), "-d", str(out))
    assert fetched.returncode == 0, fetched.stdout + fetched.stderr
    assert (out / "greet" / "2" / "out-2.txt").read_text(encoding="utf-8").split()[:3] == ["bye", "2", "3"]
    assert batchrun(local_target_env, "destroy", str(manifest), "--auto-approve").returncode == 0


def test_a_second_clone_sees_the_same_record(
    local_target_env: dict[str, str], batch_client: BatchClient, tmp_path: Path
) -> None:
    name = "rr-clones"
    first = setup(tmp_path / "clone-a", name)
    apply_wait(local_target_env, first)
    second = tmp_path / "clone-b"
    shutil.copytree(tmp_path / "clone-a", second)
    # The job is gone (deleted out of band, as a retention policy would): the record outlives it.
    batch_client.begin_delete_job(f"{name}-job").result()
    plan = batchrun(local_target_env, "plan", str(second / "workload.yaml"), "--detailed-exitcode")
    assert plan.returncode == 0, plan.stdout + plan.stderr
    status = batchrun(local_target_env, "status", str(second / "workload.yaml"))
    assert "live matches the manifest" in status.stdout, status.stdout + status.stderr
    waited = batchrun(local_target_env, "wait", str(second / "workload.yaml"))
    assert waited.returncode == 0 and "succeeded in earlier runs" in waited.stdout, (
        waited.stdout + waited.stderr
    )
    (second / "data" / "names.txt").write_text("Ada\n", encoding="utf-8")
    run = apply_wait(local_target_env, second / "workload.yaml")
    assert re.search(r"4 to add.*\n.*why they run: 3 input changed, 1 upstream reruns", run.stdout), (
        run.stdout
    )
    assert batchrun(local_target_env, "destroy", str(first), "--auto-approve").returncode == 0


@pytest.mark.parametrize("flag", ["--rerun-failed"])
def test_a_merge_behind_a_failed_task_ends_the_wait(
    local_target_env: dict[str, str], batch_client: BatchClient, tmp_path: Path, flag: str
) -> None:
    manifest = tmp_path / "blocked.yaml"
    manifest.write_text(
        """\
apiVersion: batchrun/v1
kind: Workload
metadata: {name: rr-blocked}
pool:
  id: rr-blocked-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 1
job:
  id: rr-blocked-job
  onAllTasksComplete: terminatejob
  tasks:
    - {id: ok, commandLine: /bin/true}
    - {id: bad, commandLine: /bin/sh -c "exit 3"}
    - {id: merge, dependsOn: {tasks: [ok, bad]}, commandLine: /bin/true}
""",
        encoding="utf-8",
    )
    run = batchrun(local_target_env, "apply", str(manifest), "--auto-approve", "--wait", "--timeout", "2m")
    assert run.returncode == exit_codes.TASKS_FAILED, run.stdout + run.stderr
    assert "merge (waits for failed bad)" in run.stdout
    # A plain apply does not loop on the deterministic failure; the flag reruns it and what waits for it.
    again = batchrun(local_target_env, "plan", str(manifest), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout
    assert "bad: failed (exit 3); --rerun-failed reruns it" in again.stdout
    forced = batchrun(local_target_env, "plan", str(manifest), flag)
    assert "task/rr-blocked-job/bad will run again" in forced.stdout, forced.stdout
    assert "task/rr-blocked-job/merge will run again" in forced.stdout, forced.stdout
    # With the job gone, the failure is still on record and its logs were kept next to the record.
    batch_client.begin_delete_job("rr-blocked-job").result()
    logs = batchrun(local_target_env, "logs", str(manifest), "bad", "--stderr")
    assert logs.returncode == 0 and "kept from that run" in logs.stderr, logs.stdout + logs.stderr
    destroy = batchrun(local_target_env, "destroy", str(manifest), "--auto-approve")
    assert destroy.returncode == 0, destroy.stdout + destroy.stderr
