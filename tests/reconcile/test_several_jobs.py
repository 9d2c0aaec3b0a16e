"""A workload with two jobs on its pool (``jobs:``) on the local target: applied and waited for as one, an
edit to one job's task reruns that task only, status and logs see both jobs, a job renamed out of the manifest
is an orphan deleted with --prune, and destroy removes both jobs."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.reconcile.test_cli import run

if TYPE_CHECKING:
    from azure.batch import BatchClient

MANIFEST = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {name: two-jobs}
pool:
  id: two-jobs-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 1
  taskSlotsPerNode: 2
jobs:
  - id: two-jobs-prep
    onAllTasksComplete: terminatejob
    tasks:
      - {id: prep, commandLine: /bin/sh -c "echo PREP"}
  - id: MAIN
    onAllTasksComplete: terminatejob
    tasks:
      - id: part-${i}
        foreach: {i: {range: [1, 3]}}
        commandLine: /bin/sh -c "echo part ${i}"
"""


def test_two_jobs_on_one_pool_are_reconciled_each_as_a_job_is(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    manifest = tmp_path / "two-jobs.yaml"

    def write(prep: str = "prep one", main: str = "two-jobs-main") -> None:
        manifest.write_text(MANIFEST.replace("PREP", prep).replace("MAIN", main))

    write()
    applied = run(local_target_env, "apply", str(manifest), "--auto-approve", "--wait")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "tasks of job/two-jobs-prep: 1 to add" in applied.stdout
    assert "tasks of job/two-jobs-main: 3 to add" in applied.stdout
    assert "Waiting for" not in applied.stderr  # one workload: `--wait` waits for both jobs itself
    assert "Job       two-jobs-prep (completed)" in applied.stdout
    assert "Job       two-jobs-main (completed)" in applied.stdout
    assert batch_client.get_task("two-jobs-main", "part-2").execution_info.exit_code == 0

    unchanged = run(local_target_env, "plan", str(manifest), "--detailed-exitcode")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr

    # One task of one job changes: that job is replaced to run it; the other job is left alone.
    write(prep="prep two")
    edited = run(local_target_env, "plan", str(manifest))
    assert "-/+ job/two-jobs-prep will be replaced" in edited.stdout
    assert "+ task/two-jobs-prep/prep will run (definition changed)" in edited.stdout
    assert "two-jobs-main" not in edited.stdout
    assert edited.stdout.rstrip().endswith("1 to replace, 0 to delete (5 unchanged).")
    applied = run(local_target_env, "apply", str(manifest), "--auto-approve", "--wait")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert run(local_target_env, "plan", str(manifest), "--detailed-exitcode").returncode == 0

    logs = run(local_target_env, "logs", str(manifest), "part-3")
    assert logs.returncode == 0 and logs.stdout.strip() == "part 3", logs.stdout + logs.stderr
    waited = json.loads(run(local_target_env, "wait", str(manifest), "-o", "json").stdout)
    assert (waited["outcome"], waited["exitCode"]) == ("succeeded", 0)
    assert [(job["job"]["id"], job["tasks"]["succeeded"]) for job in waited["jobs"]] == [
        ("two-jobs-prep", 1),
        ("two-jobs-main", 3),
    ]
    failed = json.loads(run(local_target_env, "logs", str(manifest), "--failed", "-o", "json").stdout)
    assert [(job["job"], job["failedTotal"]) for job in failed["jobs"]] == [
        ("two-jobs-prep", 0),
        ("two-jobs-main", 0),
    ]
    status = run(local_target_env, "status", str(manifest), "-o", "json")
    document = json.loads(status.stdout)
    assert document["job"]["id"] == "two-jobs-prep"
    assert [job["id"] for job in document["moreJobs"]] == ["two-jobs-main"]
    assert document["recordedResults"] == {"succeeded": 4, "failed": 0} and document["inSync"]

    # A job renamed in the manifest: the old one is owned but no longer named, and --prune deletes it.
    write(prep="prep two", main="two-jobs-renamed")
    renamed = run(local_target_env, "plan", str(manifest))
    assert (
        "job/two-jobs-main: owned but no longer in the manifest; kept (--prune deletes it)" in renamed.stdout
    )
    pruned = run(local_target_env, "apply", str(manifest), "--auto-approve", "--prune")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert "- job/two-jobs-main will be deleted (owned but no longer in the manifest)" in pruned.stdout

    destroyed = run(local_target_env, "destroy", str(manifest), "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert "- job/two-jobs-prep will be deleted" in destroyed.stdout
    assert "- pool/two-jobs-pool will be deleted" in destroyed.stdout
