"""Every workload in workloads/ applies through the CLI with --wait (the failing one exits with the task
failure code and shows the task's stderr) and has its outputs downloaded; a second plan finds nothing and a
second apply writes nothing; destroy removes what the workload owns."""

from __future__ import annotations

import json
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
WORKLOADS = sorted((REPO / "workloads").glob("*.yaml"))


def batchrun(env: dict[str, str], *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "batchrun", *args],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def owned_by(batch_client: BatchClient, workload: str) -> list[str]:
    found = []
    for pool in batch_client.list_pools(select=["id", "metadata"]):
        if {m.name: m.value for m in pool.metadata or []}.get("batchrun.workload") == workload:
            found.append(f"pool/{pool.id}")
    for job in batch_client.list_jobs(select=["id", "metadata"]):
        if {m.name: m.value for m in job.metadata or []}.get("batchrun.workload") == workload:
            found.append(f"job/{job.id}")
    return found


@pytest.mark.parametrize("manifest", WORKLOADS, ids=[p.stem for p in WORKLOADS])
def test_workload_applies_converges_and_destroys(
    manifest: Path,
    local_target_env: dict[str, str],
    requests_counter: RequestCounter,
    batch_client: BatchClient,
    tmp_path: Path,
) -> None:
    relative = str(manifest.relative_to(REPO))
    first = batchrun(local_target_env, "apply", relative, "--auto-approve", "--wait", "--timeout", "4m")
    assert first.stderr.splitlines()[0].startswith("Target: local"), first.stderr
    if manifest.stem == "fails":  # fails on purpose: the verdict and the failing task's stderr are shown
        assert first.returncode == exit_codes.TASKS_FAILED, first.stdout + first.stderr
        assert "broken: failing on purpose" in first.stdout + first.stderr
    else:
        assert first.returncode == 0, first.stdout + first.stderr
        assert "succeeded (exit 0)" in first.stdout + first.stderr
        outputs = batchrun(local_target_env, "outputs", relative, "-d", str(tmp_path / "out"), "-o", "json")
        assert outputs.returncode == 0, outputs.stderr
        assert [p for p in (tmp_path / "out").rglob("*") if p.is_file()], outputs.stdout

    second = batchrun(local_target_env, "plan", relative, "--detailed-exitcode")
    assert second.returncode == 0, second.stdout + second.stderr
    assert "No changes." in second.stdout

    requests_counter.reset()
    again = batchrun(local_target_env, "apply", relative, "--auto-approve")
    assert again.returncode == 0, again.stdout + again.stderr
    counts = requests_counter.snapshot()
    assert counts["writes"] == 0, counts["by_route"]
    assert counts["total"] < 30, counts["by_route"]

    as_json = batchrun(local_target_env, "plan", relative, "-o", "json")
    document = json.loads(as_json.stdout)
    assert document["summary"]["create"] == 0 and "sig=" not in as_json.stdout

    name = document["workload"]
    gone = batchrun(local_target_env, "destroy", relative, "--auto-approve", "--confirm-replace")
    assert gone.returncode == 0, gone.stdout + gone.stderr
    assert owned_by(batch_client, name) == []
