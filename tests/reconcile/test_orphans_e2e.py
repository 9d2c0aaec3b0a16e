"""Renaming a job in the manifest on the local target: the old job is shown as an orphan, and ``--prune``
deletes it (after confirmation while it still has work)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tests.reconcile.test_cli import run

if TYPE_CHECKING:
    from azure.batch import BatchClient

MANIFEST = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: orph}}
pool:
  id: {pool}
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 0
job:
  id: {job}
  tasks:
    - {{id: t1, commandLine: /bin/true}}
"""


def gone_or_deleting(batch_client: BatchClient, job_id: str) -> bool:
    from azure.core.exceptions import ResourceNotFoundError

    try:
        return str(batch_client.get_job(job_id).state).lower().endswith("deleting")
    except ResourceNotFoundError:
        return True


def test_renamed_job_is_an_orphan_until_pruned(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    manifest = tmp_path / "orph.yaml"
    manifest.write_text(MANIFEST.format(pool="orph-pool", job="orph-job-1"))
    first = run(local_target_env, "apply", str(manifest), "--auto-approve")
    assert first.returncode == 0, first.stderr

    manifest.write_text(MANIFEST.format(pool="orph-pool", job="orph-job-2"))
    shown = run(local_target_env, "plan", str(manifest))
    assert shown.returncode == 0, shown.stderr
    assert (
        "    job/orph-job-1: owned but no longer in the manifest; kept (--prune deletes it)" in shown.stdout
    )
    assert "+ job/orph-job-2 will be created" in shown.stdout
    markdown = run(local_target_env, "plan", str(manifest), "-o", "markdown")
    assert "#### Owned but no longer in the manifest" in markdown.stdout
    assert "`job/orph-job-1`" in markdown.stdout

    # Without --prune the old job stays; the new one is created beside it.
    kept = run(local_target_env, "apply", str(manifest), "--auto-approve")
    assert kept.returncode == 0, kept.stderr
    assert not gone_or_deleting(batch_client, "orph-job-1")

    # Its task still waits for a node, so deleting it would interrupt work: blocked until confirmed.
    blocked = run(local_target_env, "apply", str(manifest), "--auto-approve", "--prune")
    assert blocked.returncode == 1
    assert "job/orph-job-1: owned but no longer in the manifest; deleting would interrupt 1" in blocked.stderr
    assert not gone_or_deleting(batch_client, "orph-job-1")

    pruned = run(local_target_env, "apply", str(manifest), "--auto-approve", "--prune", "--confirm-replace")
    assert pruned.returncode == 0, pruned.stderr
    assert "- job/orph-job-1 will be deleted (owned but no longer in the manifest)" in pruned.stdout
    assert gone_or_deleting(batch_client, "orph-job-1")
    assert not gone_or_deleting(batch_client, "orph-job-2")

    after = run(local_target_env, "plan", str(manifest), "--detailed-exitcode")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "orph-job-1" not in after.stdout

    # A renamed pool: the job moves to the new pool, then the old pool is deleted (last).
    manifest.write_text(MANIFEST.format(pool="orph-pool-2", job="orph-job-2"))
    renamed = run(local_target_env, "apply", str(manifest), "--auto-approve", "--prune", "--confirm-replace")
    assert renamed.returncode == 0, renamed.stderr
    assert '~ poolInfo.poolId: "orph-pool" -> "orph-pool-2"' in renamed.stdout
    assert "- pool/orph-pool will be deleted (owned but no longer in the manifest)" in renamed.stdout
    moved = renamed.stderr.index("job/orph-job-2: job.patch")
    deleted = renamed.stderr.index("pool/orph-pool: pool.delete")
    assert moved < deleted, renamed.stderr
    assert str(batch_client.get_job("orph-job-2").pool_info.pool_id) == "orph-pool-2"

    done = run(local_target_env, "destroy", str(manifest), "--auto-approve", "--confirm-replace")
    assert done.returncode == 0, done.stderr
