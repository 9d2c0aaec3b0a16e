"""Write-only fields and removed keys, end to end through the CLI against the local target.

* A pool with a user account password and a container registry password: apply, then
  ``plan --detailed-exitcode`` exits 0; a changed password is one in-place change shown as ``(sensitive)``;
  no output of any command (text, ``-o json``, ``-v``) holds either password.
* Removing ``startTask`` from an applied pool, and an item from a job's ``metadata``: the plan removes them,
  the apply leaves the live pool and job without them, the next plan exits 0. A metadata item someone else
  set on the job is kept throughout.
"""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from batchrun.plan.plan_json import plan_from_json

if TYPE_CHECKING:
    from azure.batch import BatchClient

REPO = Path(__file__).resolve().parents[2]

IMAGE = """\
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04{extra}
  targetDedicatedNodes: 0
"""

SECRET_POOL = (
    """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: contract-secrets}}
pool:
  id: contract-secrets-pool
"""
    + IMAGE
    + """\
  userAccounts:
    - {{name: batchuser, password: "{user_password}", elevationLevel: admin}}
"""
)
REGISTRY = """
    containerConfiguration:
      type: dockerCompatible
      containerRegistries:
        - {{registryServer: contract.azurecr.io, username: puller, password: "{registry_password}"}}"""

REMOVALS = (
    """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: contract-removals}}
pool:
  id: contract-removals-pool
"""
    + IMAGE
    + """{start_task}job:
  id: contract-removals-job
  metadata: [{metadata}]
  tasks:
    - {{id: t1, commandLine: /bin/true}}
"""
)


def run(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchrun", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=180,
        stdin=subprocess.DEVNULL,
        check=False,
    )


def test_passwords_are_write_only_and_never_printed(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    user_password = "Us3r-" + secrets.token_hex(8)
    new_password = "Us3r-" + secrets.token_hex(8)
    registry_password = "Reg-" + secrets.token_hex(8)
    manifest = tmp_path / "secrets.yaml"

    def write(password: str) -> None:
        extra = REGISTRY.format(registry_password=registry_password)
        text = SECRET_POOL.format(user_password=password, extra="{extra}").replace("{extra}", extra)
        manifest.write_text(text)

    write(user_password)
    outputs: list[subprocess.CompletedProcess[str]] = []

    def step(*args: str) -> subprocess.CompletedProcess[str]:
        result = run(local_target_env, *args)
        outputs.append(result)
        return result

    applied = step("apply", str(manifest), "--auto-approve", "-v")
    assert applied.returncode == 0, applied.stderr
    unchanged = step("plan", str(manifest), "--detailed-exitcode")
    assert unchanged.returncode == 0, unchanged.stdout + unchanged.stderr
    assert "No changes" in unchanged.stdout

    write(new_password)
    changed = step("plan", str(manifest), "--detailed-exitcode", "-v")
    assert changed.returncode == 2, changed.stdout + changed.stderr
    assert "~ pool/contract-secrets-pool will be updated in place" in changed.stdout
    assert 'userAccounts[0].password: "(sensitive)" -> "(sensitive), changed"' in changed.stdout
    assert "Plan: 0 to create, 1 to update, 0 to replace" in changed.stdout
    as_json = step("plan", str(manifest), "-o", "json")
    plan = plan_from_json(json.loads(as_json.stdout))
    (pool,) = [c for c in plan.changes if c.kind == "pool"]
    assert [(f.path, f.after) for f in pool.fields] == [("userAccounts[0].password", "(sensitive), changed")]
    assert [op.name for op in pool.operations] == ["pool.patch"]

    again = step("apply", str(manifest), "--auto-approve", "-v")
    assert again.returncode == 0, again.stderr
    settled = step("plan", str(manifest), "--detailed-exitcode")
    assert settled.returncode == 0, settled.stdout + settled.stderr

    printed = "\n".join(r.stdout + r.stderr for r in outputs)
    for password in (user_password, new_password, registry_password):
        assert password not in printed
    metadata = {m.name: m.value for m in batch_client.get_pool("contract-secrets-pool").metadata or []}
    record = json.loads(metadata["batchrun.secrets"])
    assert set(record["values"]) == {
        "userAccounts[0].password",
        "virtualMachineConfiguration.containerConfiguration.containerRegistries[0].password",
    }
    assert all(password not in metadata["batchrun.secrets"] for password in (new_password, registry_password))
    assert run(local_target_env, "destroy", str(manifest), "--auto-approve").returncode == 0


def test_removed_start_task_and_metadata_item_are_reverted(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    from azure.batch import models

    manifest = tmp_path / "removals.yaml"
    start_task = "  startTask: {commandLine: /bin/true, waitForSuccess: true}\n"
    both = "{name: team, value: viz}, {name: tier, value: gold}"
    manifest.write_text(REMOVALS.format(extra="", start_task=start_task, metadata=both))
    applied = run(local_target_env, "apply", str(manifest), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert batch_client.get_pool("contract-removals-pool").start_task is not None
    # Someone else adds an item to the job: it is theirs, never drift and never wiped.
    job = batch_client.get_job("contract-removals-job")
    items = [*(job.metadata or []), models.BatchMetadataItem(name="owner", value="ops")]
    batch_client.update_job("contract-removals-job", models.BatchJobUpdateOptions(metadata=items))
    assert run(local_target_env, "plan", str(manifest), "--detailed-exitcode").returncode == 0

    manifest.write_text(REMOVALS.format(extra="", start_task="", metadata="{name: team, value: viz}"))
    plan = run(local_target_env, "plan", str(manifest), "--detailed-exitcode")
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "~ pool/contract-removals-pool will be updated in place" in plan.stdout
    assert '~ startTask: {"commandLine": "/bin/true"} -> "(removed)"' in plan.stdout
    assert "~ job/contract-removals-job will be updated in place" in plan.stdout
    assert '~ metadata.tier: "gold" -> "(removed)"' in plan.stdout
    assert "metadata.owner" not in plan.stdout

    applied = run(local_target_env, "apply", str(manifest), "--auto-approve")
    assert applied.returncode == 0, applied.stderr
    assert batch_client.get_pool("contract-removals-pool").start_task is None
    live = {m.name: m.value for m in batch_client.get_job("contract-removals-job").metadata or []}
    assert "tier" not in live and live["team"] == "viz" and live["owner"] == "ops"
    settled = run(local_target_env, "plan", str(manifest), "--detailed-exitcode")
    assert settled.returncode == 0, settled.stdout + settled.stderr
    done = run(local_target_env, "destroy", str(manifest), "--auto-approve", "--confirm-replace")
    assert done.returncode == 0, done.stderr
