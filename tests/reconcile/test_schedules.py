"""``schedule:`` on the local target: the job runs as a Batch job schedule whose job manager task adds the
manifest's tasks to each run's job with a job-scoped token; plan, update, status, wait and destroy. Also the
repository of the GitOps issue: three workloads (one on another's pool, one with two jobs, one on a schedule)
planned and applied as one, then a second plan with no changes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tests.emulator.conftest import wait_until
from tests.reconcile.test_cli import run

if TYPE_CHECKING:
    from azure.batch import BatchClient

POOL = """\
pool:
  id: {pool}
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 1
  taskSlotsPerNode: 2
"""

SCHEDULED = (
    """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: {name}}}
"""
    + POOL
    + """\
schedule: {{recurrenceInterval: PT1H}}
job:
  id: {name}
  tasks:
    - {{id: extract, commandLine: /bin/sh -c "echo extract {word}"}}
    - {{id: load, commandLine: /bin/sh -c "echo load", dependsOn: {{tasks: [extract]}}}}
"""
)


def _runs(batch_client: BatchClient, schedule_id: str) -> list[Any]:
    return list(batch_client.list_jobs_from_schedule(schedule_id))


def _run_finished(batch_client: BatchClient, job_id: str) -> bool:
    tasks = {task.id: task for task in batch_client.list_tasks(job_id)}
    return {"extract", "load"} <= set(tasks) and all(t.state == "completed" for t in tasks.values())


def test_a_scheduled_workload_runs_its_tasks_in_each_run(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    manifest = tmp_path / "nightly.yaml"
    manifest.write_text(SCHEDULED.format(name="sched-a", pool="sched-a-pool", word="one"))
    planned = run(local_target_env, "plan", str(manifest))
    assert (
        "+ jobschedule/sched-a will be created (every PT1H; 2 task(s) added to each run's job)"
        in planned.stdout
    )
    applied = run(local_target_env, "apply", str(manifest), "--auto-approve", "--wait")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "runs on a schedule, so there is no one job to wait for" in applied.stderr

    # No doNotRunUntil: the first run starts at once; its job manager adds the tasks with the job's token.
    runs = wait_until(lambda: _runs(batch_client, "sched-a"), what="the schedule's first run")
    job_id = runs[0].id
    wait_until(lambda: _run_finished(batch_client, job_id), what="the run's tasks")
    for task in batch_client.list_tasks(job_id):
        assert task.execution_info.exit_code == 0, task.id
    added = b"".join(batch_client.download_task_file(job_id, "batchrun-add-tasks", "stdout.txt")).decode()
    assert added.strip() == f"added 2 task(s) to job {job_id}"
    extract = b"".join(batch_client.download_task_file(job_id, "extract", "stdout.txt")).decode()
    assert extract.strip() == "extract one"
    assert run(local_target_env, "plan", str(manifest), "--detailed-exitcode").returncode == 0
    logs = run(local_target_env, "logs", str(manifest), "extract")
    assert logs.returncode == 0 and logs.stdout.strip() == "extract one", logs.stdout + logs.stderr
    assert f"Logs of the schedule's latest run, job {job_id}." in logs.stderr

    status = json.loads(run(local_target_env, "status", str(manifest), "-o", "json").stdout)
    assert status["schedule"]["state"] == "active" and status["schedule"]["runs"][0]["job"] == job_id
    assert status["inSync"], status["differences"]
    waited = run(local_target_env, "wait", str(manifest))
    assert waited.returncode == 1 and "there is no one job to wait for" in waited.stderr

    # An edit updates the schedule in place: the next run's job manager adds the new tasks.
    manifest.write_text(SCHEDULED.format(name="sched-a", pool="sched-a-pool", word="two"))
    edited = run(local_target_env, "plan", str(manifest))
    assert "~ jobschedule/sched-a will be updated in place" in edited.stdout
    assert run(local_target_env, "apply", str(manifest), "--auto-approve").returncode == 0
    schedule = batch_client.get_job_schedule("sched-a")
    variables = {e.name: e.value for e in schedule.job_specification.job_manager_task.environment_settings}
    assert "extract two" in _decoded(variables["BATCHRUN_TASKS"])
    assert run(local_target_env, "plan", str(manifest), "--detailed-exitcode").returncode == 0

    # Renamed: the old schedule is owned but no longer named; --prune deletes it (and its runs).
    renamed = SCHEDULED.format(name="sched-a", pool="sched-a-pool", word="two").replace(
        "id: sched-a\n", "id: sched-b\n"
    )
    manifest.write_text(renamed)
    orphaned = run(local_target_env, "plan", str(manifest))
    assert (
        "jobschedule/sched-a: owned but no longer in the manifest; kept (--prune deletes it)"
        in orphaned.stdout
    )
    pruned = run(local_target_env, "apply", str(manifest), "--auto-approve", "--prune")
    assert pruned.returncode == 0, pruned.stdout + pruned.stderr
    assert "- jobschedule/sched-a will be deleted (owned but no longer in the manifest)" in pruned.stdout

    destroyed = run(local_target_env, "destroy", str(manifest), "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert "- jobschedule/sched-b will be deleted" in destroyed.stdout
    from azure.core.exceptions import ResourceNotFoundError

    try:
        batch_client.get_job_schedule("sched-a")
        raise AssertionError("the schedule is still there after destroy")
    except ResourceNotFoundError:
        pass


def _decoded(encoded: str) -> str:
    import base64
    import gzip

    return gzip.decompress(base64.b64decode(encoded)).decode()


def test_a_repository_of_three_workloads_plans_and_applies_as_one(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    header = "apiVersion: batchrun/v1\nkind: Workload\nmetadata: {{name: {name}}}\n"
    # One workload with two jobs on its pool ...
    (repo / "platform.yaml").write_text(
        header.format(name="gx-platform")
        + POOL.format(pool="gx-pool")
        + """\
jobs:
  - id: gx-prep
    onAllTasksComplete: terminatejob
    tasks: [{id: prep, commandLine: /bin/true}]
  - id: gx-main
    onAllTasksComplete: terminatejob
    tasks: [{id: main, commandLine: /bin/true}]
"""
    )
    # ... one whose job runs on that pool ...
    (repo / "report.yaml").write_text(
        header.format(name="gx-report")
        + """\
job:
  id: gx-report
  poolInfo: {poolId: gx-pool}
  onAllTasksComplete: terminatejob
  tasks: [{id: report, commandLine: /bin/true}]
"""
    )
    # ... and one on a schedule, on the same pool.
    (repo / "nightly.yaml").write_text(
        header.format(name="gx-nightly")
        + """\
schedule: {recurrenceInterval: P1D}
job:
  id: gx-nightly
  poolInfo: {poolId: gx-pool}
  tasks: [{id: nightly, commandLine: /bin/true}]
"""
    )
    planned = run(local_target_env, "plan", str(repo), "--detailed-exitcode")
    assert planned.returncode == 2, planned.stdout + planned.stderr
    order = [planned.stdout.index(f"=== workload gx-{name}") for name in ("platform", "nightly", "report")]
    assert order == sorted(order)  # the pool's workload first
    applied = run(local_target_env, "apply", str(repo), "--auto-approve", "--wait")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Apply complete: 3 of 3 workloads changed" in applied.stderr
    for job_id, task_id in (("gx-prep", "prep"), ("gx-main", "main"), ("gx-report", "report")):
        assert batch_client.get_task(job_id, task_id).execution_info.exit_code == 0
    assert batch_client.get_job_schedule("gx-nightly").job_specification.pool_info.pool_id == "gx-pool"
    again = run(local_target_env, "plan", str(repo), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.rstrip().endswith("3 workloads: no changes. Live state matches every manifest.")
    assert run(local_target_env, "destroy", str(repo), "--auto-approve").returncode == 0
