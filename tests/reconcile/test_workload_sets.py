"""A folder of workloads on the local target as one: one combined plan, applied pool first (a job runs on
another workload's pool), a second plan with no changes, a saved plan of the set refused when the shared pool
moved out of band, status of each, and destroy jobs before the pool."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.reconcile.test_cli import run

if TYPE_CHECKING:
    from azure.batch import BatchClient

SHARED = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {name: set-shared}
pool:
  id: set-shared-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 1
  taskSlotsPerNode: 2
job:
  id: set-shared-prep
  onAllTasksComplete: terminatejob
  tasks:
    - {id: prep, commandLine: /bin/sh -c "echo prep"}
"""

# Sorts before "shared", so the order applied comes from the pool reference, not from the names.
BORROWER = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {name: set-etl}
job:
  id: set-etl-job
  poolInfo: {poolId: set-shared-pool}
  onAllTasksComplete: terminatejob
  tasks:
    - {id: extract, commandLine: /bin/sh -c "echo COMMAND"}
"""


def test_a_folder_of_workloads_plans_applies_and_destroys_as_one(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    from azure.batch import models

    repo = tmp_path / "repo"
    (repo / "vars").mkdir(parents=True)
    (repo / "shared.yaml").write_text(SHARED)
    (repo / "etl.yaml").write_text(BORROWER.replace("COMMAND", "one"))
    (repo / "vars" / "dev.yaml").write_text("count: 3\n")

    planned = run(local_target_env, "plan", str(repo), "--detailed-exitcode")
    assert planned.returncode == 2, planned.stderr
    assert planned.stdout.index("=== workload set-shared") < planned.stdout.index("=== workload set-etl")
    assert "+ pool/set-shared-pool will be created" in planned.stdout
    assert "+ task/set-etl-job/extract will run (new)" in planned.stdout
    # The state container is created by the first workload that runs tasks on this target, if not there yet.
    assert planned.stdout.rstrip().split("\n")[-1].startswith("2 workloads, 2 with changes: ")
    assert f"Skipped {repo / 'vars' / 'dev.yaml'}: not a workload manifest" in planned.stderr

    markdown = run(local_target_env, "plan", str(repo), "-o", "markdown")
    assert markdown.returncode == 0, markdown.stderr
    assert markdown.stdout.startswith("## batchrun plan: 2 workloads\n")
    assert "| `set-etl` |" in markdown.stdout and "Target: local (" in markdown.stdout
    assert "Target: Target:" not in markdown.stdout

    applied = run(local_target_env, "apply", str(repo), "--auto-approve", "--wait")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert applied.stderr.index("Applying workload set-shared") < applied.stderr.index(
        "Applying workload set-etl"
    )
    assert "Apply complete: 2 of 2 workloads changed: " in applied.stderr
    assert batch_client.get_task("set-etl-job", "extract").execution_info.exit_code == 0
    assert batch_client.get_job("set-etl-job").pool_info.pool_id == "set-shared-pool"

    again = run(local_target_env, "plan", str(repo / "etl.yaml"), str(repo), "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.rstrip().endswith("2 workloads: no changes. Live state matches every manifest.")

    # A saved plan of the set is refused as a whole when the shared pool moved out of band.
    (repo / "etl.yaml").write_text(BORROWER.replace("COMMAND", "two"))
    out = tmp_path / "plans.json"
    saved = run(local_target_env, "plan", str(repo), "-out", str(out))
    assert saved.returncode == 0 and json.loads(out.read_text())["kind"] == "batchrun/saved-plans"
    batch_client.begin_resize_pool(
        "set-shared-pool", models.BatchPoolResizeOptions(target_dedicated_nodes=2), polling_interval=1
    ).result()
    refused = run(local_target_env, "apply", str(out))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert (
        "pool/set-shared-pool: changed since the plan was made (targetDedicatedNodes 1 -> 2" in refused.stderr
    )
    assert "Traceback" not in refused.stderr
    assert batch_client.get_task("set-etl-job", "extract").command_line.endswith('one"')

    # Planned again, the saved set is carried out exactly.
    saved = run(local_target_env, "plan", str(repo), "-out", str(out))
    assert saved.returncode == 0, saved.stderr
    applied = run(local_target_env, "apply", str(out), "--wait")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "Waiting for workload set-etl (job set-etl-job)" in applied.stderr
    # The pool is resized back to the manifest's count; the edited task runs again.
    assert "2 of 2 workloads changed: 1 created, 1 updated, 1 replaced" in applied.stderr
    assert batch_client.get_task("set-etl-job", "extract").command_line.endswith('two"')

    status = run(local_target_env, "status", str(repo), "-o", "json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)["workloads"]
    assert [(w["manifest"], w["job"]["id"]) for w in shown] == [
        (str(repo / "shared.yaml"), "set-shared-prep"),
        (str(repo / "etl.yaml"), "set-etl-job"),
    ]

    destroyed = run(local_target_env, "destroy", str(repo), "--auto-approve")
    assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    assert destroyed.stderr.index("Destroying workload set-etl") < destroyed.stderr.index(
        "Destroying workload set-shared"
    )
    assert "- pool/set-shared-pool will be deleted" in destroyed.stdout
    assert "- job/set-etl-job will be deleted" in destroyed.stdout


def test_variables_flags_and_clashing_manifests_are_refused_before_any_request(
    tmp_path: Path, local_target_env: dict[str, str]
) -> None:
    (tmp_path / "a.yaml").write_text(SHARED)
    (tmp_path / "b.yaml").write_text(SHARED.replace("name: set-shared", "name: set-other"))
    clash = run(local_target_env, "plan", str(tmp_path))
    assert clash.returncode == 1
    assert "pool 'set-shared-pool' is also declared by" in clash.stderr and "Traceback" not in clash.stderr
    (tmp_path / "b.yaml").unlink()
    flags = run(local_target_env, "apply", str(tmp_path), str(tmp_path / "a.yaml"), "--var", "x=1")
    assert flags.returncode == 1
    assert "--var and --var-file set one manifest's variables" in flags.stderr


def test_the_repository_workloads_folder_plans_as_one(local_target_env: dict[str, str]) -> None:
    # docs/gitops.md: `batchrun plan workloads/ -o markdown > plan.md`
    planned = run(local_target_env, "plan", "workloads/", "-o", "markdown")
    assert planned.returncode == 0, planned.stderr
    for name in ("fails", "hello", "ingest", "sweep"):
        assert f"| `{name}` | `workloads/{name}.yaml` |" in planned.stdout


def test_a_saved_set_with_a_blocked_change_applies_nothing(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    from azure.batch import models

    first = SHARED.replace("set-shared", "blk-first")
    second = SHARED.replace("set-shared", "blk-second")
    (tmp_path / "a.yaml").write_text(first)
    (tmp_path / "b.yaml").write_text(second)
    # b's pool id is taken by a pool batchrun does not own: its plan is blocked (needs --adopt).
    batch_client.create_pool(
        models.BatchPoolCreateOptions(
            id="blk-second-pool",
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
        )
    )
    out = tmp_path / "plans.json"
    assert run(local_target_env, "plan", str(tmp_path), "-out", str(out)).returncode == 0
    refused = run(local_target_env, "apply", str(out))
    assert refused.returncode == 1, refused.stdout + refused.stderr
    assert "the saved plans have blocked changes, so nothing was applied" in refused.stderr
    assert "blk-second: pool/blk-second-pool" in refused.stderr and "Traceback" not in refused.stderr
    assert not [p.id for p in batch_client.list_pools() if p.id == "blk-first-pool"]  # nothing applied
    alone = run(local_target_env, "apply", str(out), str(tmp_path / "a.yaml"))
    assert alone.returncode == 1 and f"{out} is a saved plan: apply it alone" in alone.stderr
