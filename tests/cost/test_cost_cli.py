"""The cost line through the CLI on the local target: no region, so no Azure price and it says so; a user's
price file prices the pool; status shows node-hours so far."""

from __future__ import annotations

import json
from pathlib import Path

from tests.reconcile.test_cli import run

MANIFEST = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {name: costly}
pool:
  id: costly-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 1
job:
  id: costly-job
  onAllTasksComplete: terminatejob
  tasks:
    - {id: t1, commandLine: /bin/true}
"""
PRICES = """\
currency: USD
date: 2026-11-30
prices:
  - {vmSize: standard_d2s_v3, region: "*", dedicated: 0.115, spot: 0.0231}
"""


def test_cost_lines_on_the_local_target(tmp_path: Path, local_target_env: dict[str, str]) -> None:
    manifest = tmp_path / "costly.yaml"
    manifest.write_text(MANIFEST)
    prices = tmp_path / "prices.yaml"
    prices.write_text(PRICES)

    plain = run(local_target_env, "plan", str(manifest))
    assert plain.returncode == 0, plain.stderr
    assert (
        "Cost: pool/costly-pool: 1 dedicated + 0 low-priority node(s) of standard_d2s_v3; no price "
        "(the local target has no Azure region, so no Azure price applies" in plain.stdout
    )

    priced = run(local_target_env, "plan", str(manifest), "--price-file", str(prices))
    assert (
        "Cost: pool/costly-pool: 1 dedicated x 0.115 = 0.115 USD/hour (standard_d2s_v3 Linux any region; "
        f"price file {prices} (2026-11-30))" in priced.stdout
    ), priced.stdout
    markdown = run(local_target_env, "plan", str(manifest), "-o", "markdown", "--price-file", str(prices))
    assert "Cost: pool/costly-pool: 1 dedicated x 0.115 = 0.115 USD/hour" in markdown.stdout

    applied = run(local_target_env, "apply", str(manifest), "--auto-approve", "--wait", "--timeout", "5m")
    assert applied.returncode == 0, applied.stderr
    assert "pool/costly-pool node-hours so far: " in applied.stderr  # apply --wait ends like wait
    status = run({**local_target_env, "BATCHRUN_PRICE_FILE": str(prices)}, "status", str(manifest))
    assert status.returncode == 0, status.stderr
    line = next(x for x in status.stdout.splitlines() if x.startswith("pool/costly-pool node-hours so far: "))
    assert " dedicated, 0.00 low-priority (nodes now in the pool, since each was allocated) = " in line
    assert line.endswith(f"USD (standard_d2s_v3 Linux any region; price file {prices} (2026-11-30))"), line
    document = json.loads(run(local_target_env, "status", str(manifest), "-o", "json").stdout)
    assert document["nodeHours"]["pool"] == "costly-pool" and document["nodeHours"]["dedicatedNodeHours"] > 0
    assert document["nodeHours"]["cost"] is None
    assert document["nodeHours"]["noCost"].startswith("the local target has no Azure region")
    waited = run(local_target_env, "wait", str(manifest))
    assert waited.returncode == 0
    assert "pool/costly-pool node-hours so far: " in waited.stderr
    assert "no cost shown: the local target has no Azure region" in waited.stderr
    assert run(local_target_env, "destroy", str(manifest), "--auto-approve").returncode == 0
