"""``plan -out FILE`` then ``apply FILE`` on the local target: the reviewed plan is applied exactly, or
refused with what moved named; the file holds no secret."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

from tests.reconcile.test_cli import run

if TYPE_CHECKING:
    from azure.batch import BatchClient

SIGNATURE = "c2VjcmV0c2lnbmF0dXJl"
MANIFEST = """\
apiVersion: batchrun/v1
kind: Workload
metadata: {{name: {name}}}
variables: {{word: hello}}
storage:
  inputs: [{{name: data, source: ./data, container: {name}-in}}]
pool:
  id: {name}-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 0
  userAccounts: [{{name: runner, password: "P4ssw0rd-never-shown"}}]
job:
  id: {name}-job
  tasks:
    - id: t1
      commandLine: /bin/sh -c "echo ${{word}} {command}"
      inputs: [data]
      resourceFiles:
        - httpUrl: "https://example.invalid/c/f.txt?sv=2024-01-01&sp=r&sig={signature}"
          filePath: f.txt
"""


def write(folder: Path, name: str, command: str = "one") -> Path:
    (folder / "data").mkdir(exist_ok=True)
    (folder / "data" / "in.txt").write_text("content\n")
    manifest = folder / f"{name}.yaml"
    manifest.write_text(MANIFEST.format(name=name, command=command, signature=SIGNATURE))
    return manifest


def test_saved_plan_is_applied_exactly_and_holds_no_secret(
    tmp_path: Path, local_target_env: dict[str, str]
) -> None:
    manifest = write(tmp_path, "saved-a")
    out = tmp_path / "plan.json"
    planned = run(local_target_env, "plan", str(manifest), "--var", "word=hi", "-out", str(out))
    assert planned.returncode == 0, planned.stderr
    assert f"`batchrun apply {out}` carries out exactly this plan" in planned.stderr
    text = out.read_text()
    for secret in ("P4ssw0rd-never-shown", SIGNATURE):
        assert secret not in text
    saved = json.loads(text)
    assert saved["manifest"]["varNames"] == ["word"] and "hi" not in json.dumps(saved["manifest"])
    assert saved["madeFrom"]["pool"] is None and saved["madeFrom"]["inputs"]["data"]

    # The values of --var flags are not saved: apply asks for them again.
    missing = run(local_target_env, "apply", str(out))
    assert missing.returncode == 1 and "pass the same --var flags" in missing.stderr, missing.stderr

    applied = run(local_target_env, "apply", str(out), "--var", "word=hi")
    assert applied.returncode == 0, applied.stderr
    assert "+ pool/saved-a-pool will be created" in applied.stdout
    assert "Apply complete: " in applied.stderr and "+ job/saved-a-job will be created" in applied.stdout
    # It did exactly what it showed: nothing is left to do.
    again = run(local_target_env, "plan", str(manifest), "--var", "word=hi", "--detailed-exitcode")
    assert again.returncode == 0, again.stdout + again.stderr

    # A saved plan is single use: applied again, live state has moved on.
    stale = run(local_target_env, "apply", str(out), "--var", "word=hi")
    assert stale.returncode == 1
    assert "pool/saved-a-pool: created since the plan was made" in stale.stderr


def test_saved_plan_refused_when_the_pool_changed_out_of_band(
    tmp_path: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    from azure.batch import models

    manifest = write(tmp_path, "saved-b")
    assert run(local_target_env, "apply", str(manifest), "--auto-approve").returncode == 0
    write(tmp_path, "saved-b", command="two")
    out = tmp_path / "plan.json"
    planned = run(local_target_env, "plan", str(manifest), "-out", str(out))
    assert planned.returncode == 0 and "task/saved-b-job/t1" in planned.stdout, planned.stderr

    batch_client.begin_resize_pool(
        "saved-b-pool", models.BatchPoolResizeOptions(target_dedicated_nodes=1), polling_interval=1
    ).result()
    refused = run(local_target_env, "apply", str(out))
    assert refused.returncode == 1
    assert "pool/saved-b-pool: changed since the plan was made (targetDedicatedNodes 0 -> 1" in refused.stderr
    assert "nothing was applied" in refused.stderr
    assert "Traceback" not in refused.stderr
    # Nothing was applied: the task still has its old command line.
    task = batch_client.get_task("saved-b-job", "t1")
    assert task.command_line.endswith('hello one"')


def test_saved_plan_refused_when_the_manifest_or_an_input_changed(
    tmp_path: Path, local_target_env: dict[str, str]
) -> None:
    manifest = write(tmp_path, "saved-c")
    out = tmp_path / "plan.json"
    assert run(local_target_env, "plan", str(manifest), "-out", str(out)).returncode == 0
    write(tmp_path, "saved-c", command="edited")
    (tmp_path / "data" / "in.txt").write_text("other content\n")
    refused = run(local_target_env, "apply", str(out))
    assert refused.returncode == 1
    assert "the manifest changed since the plan was made" in refused.stderr
    assert "storage.input/data: local files changed since the plan was made (in.txt)" in refused.stderr

    # Made against another target: refused before anything is read.
    saved = json.loads(out.read_text())
    saved["plan"]["target"] = "Target: azure (Batch account prod at https://prod.westeurope.batch.azure.com)"
    out.write_text(json.dumps(saved))
    elsewhere = run(local_target_env, "apply", str(out))
    assert elsewhere.returncode == 1
    assert "this plan was made against 'Target: azure (Batch account prod" in elsewhere.stderr

    # A damaged file is an error with its name, not a traceback.
    out.write_text('{"kind": "batchrun/saved-plan", "formatVersion": 1}')
    damaged = run(local_target_env, "apply", str(out))
    assert damaged.returncode == 1 and f"{out}: not a readable saved plan" in damaged.stderr


def test_plan_markdown_through_the_cli(tmp_path: Path, local_target_env: dict[str, str]) -> None:
    manifest = write(tmp_path, "saved-d")
    shown = run(local_target_env, "plan", str(manifest), "-o", "markdown")
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.startswith("### batchrun plan: workload `saved-d`")
    assert "| create | `pool/saved-d-pool` |" in shown.stdout
    assert "P4ssw0rd-never-shown" not in shown.stdout and SIGNATURE not in shown.stdout


def test_a_saved_upload_applies_after_its_files_are_written_again_with_the_same_content(
    tmp_path: Path, local_target_env: dict[str, str]
) -> None:
    """Another checkout (CI) or a fresh `git checkout` writes the inputs again: new inode, ctime and maybe
    mtime, the same content. The plan is the same plan."""
    import os
    import time

    manifest = write(tmp_path, "saved-e")
    data = tmp_path / "data" / "in.txt"
    old = time.time() - 3600
    os.utime(data, (old, old))  # the plan's hash is vouched for by the file's stat data
    out = tmp_path / "plan.json"
    assert run(local_target_env, "plan", str(manifest), "-out", str(out)).returncode == 0
    data.unlink()
    data.write_text("content\n")  # written again: the same bytes, a new inode, a new mtime and ctime
    applied = run(local_target_env, "apply", str(out))
    assert applied.returncode == 0, applied.stderr
    assert "Apply complete: " in applied.stderr
