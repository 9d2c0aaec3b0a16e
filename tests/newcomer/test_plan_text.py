"""What plan and validate say: a blocked plan is an error for --detailed-exitcode (item 4), storage lines name
files (item 5), a missing input folder is one error (item 6), and start task or package changes say that nodes
need a reboot, which --reboot-nodes does (item 12)."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.operate.cli import REPO, batchrun, batchrun_in_terminal, manifest

if TYPE_CHECKING:
    from azure.batch import BatchClient

JOB = """
job:
  id: {prefix}-job
  tasks:
    - id: t1
      commandLine: /bin/true
"""


def test_detailed_exitcode_is_1_when_the_plan_is_blocked(
    local_target_env: dict[str, str], batch_client: BatchClient, tmp_path: Path
) -> None:
    from azure.batch import models

    # A same-id pool that batchrun did not create: never changed, so the plan is blocked.
    batch_client.create_pool(
        models.BatchPoolCreateOptions(
            id="nc-blocked-pool",
            vm_size="standard_d2s_v3",
            virtual_machine_configuration=models.VirtualMachineConfiguration(
                image_reference=models.BatchVmImageReference(
                    publisher="canonical", offer="ubuntu-24_04-lts", sku="server", version="latest"
                ),
                node_agent_sku_id="batch.node.ubuntu 24.04",
            ),
            target_dedicated_nodes=0,
        )
    )
    try:
        path = manifest(tmp_path, "nc-blocked", JOB.format(prefix="nc-blocked"))
        run = batchrun(["plan", str(path), "--detailed-exitcode"], local_target_env)
        assert run.code == 1, run.stdout + run.stderr
        assert "pool/nc-blocked-pool is BLOCKED" in run.stdout
        assert "blocked changes: apply would refuse it" in run.stderr
        terminal = batchrun_in_terminal(["plan", str(path), "--detailed-exitcode"], local_target_env)
        assert terminal.code == 1
        # The README's CI line fails on a blocked plan ...
        ci = f"{sys.executable} -m batchrun plan {path} --detailed-exitcode || [ $? -eq 2 ]"
        blocked = subprocess.run(["sh", "-c", ci], env=local_target_env, cwd=REPO, capture_output=True)
        assert blocked.returncode != 0
        # ... and passes on one with changes apply can make (exit 2).
        other = manifest(tmp_path, "nc-unblocked", JOB.format(prefix="nc-unblocked"))
        ci = f"{sys.executable} -m batchrun plan {other} --detailed-exitcode || [ $? -eq 2 ]"
        pending = subprocess.run(["sh", "-c", ci], env=local_target_env, cwd=REPO, capture_output=True)
        assert pending.returncode == 0
        assert batchrun(["plan", str(other), "--detailed-exitcode"], local_target_env).code == 2
    finally:
        batch_client.begin_delete_pool("nc-blocked-pool", polling_interval=1).result()


STORAGE = """
storage:
  inputs: [{name: texts, source: ./texts, container: nc-store-in, prefix: t/}]
job:
  id: nc-store-job
  tasks:
    - id: t1
      commandLine: /bin/true
      inputs: [texts]
"""


@pytest.fixture
def storage_manifest(local_target_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    texts = tmp_path / "texts"
    texts.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (texts / name).write_text(name)
    path = manifest(tmp_path, "nc-store", STORAGE)
    yield path
    batchrun(["destroy", str(path), "--auto-approve", "--containers"], local_target_env)


def test_storage_lines_name_the_files_and_say_what_happens(
    storage_manifest: Path, local_target_env: dict[str, str]
) -> None:
    first = batchrun(["plan", str(storage_manifest)], local_target_env)
    assert (
        "+ storage.input/texts will be created: container nc-store-in to create; 3 file(s) to upload, new"
        in first.stdout
    )
    assert "upload to nc-store-in: t/a.txt, t/b.txt, t/c.txt" in first.stdout
    assert "null ->" not in first.stdout
    assert "differs by MD5" not in first.stdout and "->" not in first.stdout.split("storage.outputs")[0]
    assert batchrun(["apply", str(storage_manifest), "--auto-approve"], local_target_env).code == 0

    folder = storage_manifest.parent / "texts"
    (folder / "b.txt").write_text("b, edited")
    (folder / "d.txt").write_text("new")
    second = batchrun(["plan", str(storage_manifest)], local_target_env)
    assert (
        "~ storage.input/texts will be updated in place: 2 file(s) to upload, "
        "new or changed (by Content-MD5); 2 unchanged" in second.stdout
    )
    assert "upload to nc-store-in: t/b.txt, t/d.txt" in second.stdout
    assert '"2 to upload"' not in second.stdout
    terminal = batchrun_in_terminal(["plan", str(storage_manifest)], local_target_env)
    assert "upload to nc-store-in: t/b.txt, t/d.txt" in terminal.stdout


MISSING_INPUT = """
storage:
  inputs: [{name: texts, source: ./texts, container: nc-missing-in}]
job:
  id: nc-missing-job
  tasks:
    - id: count-${f.stem}
      foreach: {f: {files: texts}}
      commandLine: wc -l ${f.name}
      inputs: [texts]
"""


def test_a_missing_input_folder_is_one_error(tmp_path: Path) -> None:
    path = manifest(tmp_path, "nc-missing", MISSING_INPUT)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}
    for run in (batchrun(["validate", str(path)], env), batchrun_in_terminal(["validate", str(path)], env)):
        assert run.code == 1
        text = run.stdout + run.stderr
        assert "source './texts' does not exist" in text
        assert "has no attribute" not in text and "has no files" not in text
        assert text.count(str(path) + ":") == 1, text


PACKAGE_VARIABLE = """
packages: [{{id: tools, version: "2.0", source: ./tools}}]
job:
  id: nc-pkgvar-job
  tasks:
    - id: old
      commandLine: /bin/sh -c "$$AZ_BATCH_APP_PACKAGE_tools_1_0/run.sh"
    - id: current
      commandLine: /bin/sh -c "$$AZ_BATCH_APP_PACKAGE_tools_2_0/run.sh; $$AZ_BATCH_APP_PACKAGE_tools/run.sh"
"""


def test_a_command_line_naming_a_package_version_the_manifest_dropped_is_flagged(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "run.sh").write_text("echo hi\n")
    path = manifest(tmp_path, "nc-pkgvar", PACKAGE_VARIABLE.format(), pool_extra="  packages: [tools]\n")
    run = batchrun(["validate", str(path)], {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert run.code == 1
    assert "AZ_BATCH_APP_PACKAGE_tools_1_0 names a version of package 'tools'" in run.stderr
    assert "(at job.tasks[0].commandLine); use AZ_BATCH_APP_PACKAGE_tools_2_0" in run.stderr
    assert "tasks[1]" not in run.stderr


REBOOT_POOL = """
  startTask:
    commandLine: /bin/sh -c "echo booted-with-${version}"
    waitForSuccess: true
"""


@pytest.fixture
def reboot_manifest(local_target_env: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    path = manifest(
        tmp_path,
        "nc-reboot",
        "variables: {version: one}\n" + JOB.format(prefix="nc-reboot"),
        pool_extra=REBOOT_POOL,
    )
    yield path
    batchrun(["destroy", str(path), "--auto-approve", "--confirm-replace"], local_target_env)


def _start_task_output(batch_client: BatchClient, pool_id: str) -> str:
    node = next(iter(batch_client.list_nodes(pool_id)))
    return b"".join(batch_client.download_node_file(pool_id, node.id, "startup/stdout.txt")).decode()


def test_a_start_task_change_says_nodes_need_a_reboot_and_reboot_nodes_does_it(
    reboot_manifest: Path, local_target_env: dict[str, str], batch_client: BatchClient
) -> None:
    applied = batchrun(["apply", str(reboot_manifest), "--auto-approve", "--wait"], local_target_env)
    assert applied.code == 0, applied.stdout + applied.stderr
    assert _start_task_output(batch_client, "nc-reboot-pool") == "booted-with-one\n"

    changed = ["--var", "version=two"]
    plan = batchrun(["plan", str(reboot_manifest), *changed], local_target_env)
    assert (
        "note: 1 node(s) keep the start task they booted with until rebooted or reimaged: --reboot-nodes "
        "reboots them once their running tasks finish" in plan.stdout
    )
    terminal = batchrun_in_terminal(["plan", str(reboot_manifest), *changed], local_target_env)
    assert "keep the start task they booted with" in terminal.stdout

    rebooted = batchrun(
        ["apply", str(reboot_manifest), *changed, "--auto-approve", "--reboot-nodes", "--wait"],
        local_target_env,
    )
    assert rebooted.code == 0, rebooted.stdout + rebooted.stderr
    assert "1 node(s) will be rebooted once their running tasks finish, to get the new start task" in (
        rebooted.stdout
    )
    assert "pool/nc-reboot-pool: pool.reboot_nodes done" in rebooted.stderr
    # The node booted again with the new start task: the emulator keeps the old one until then, as Azure does.
    output = ""
    for _ in range(600):  # a bounded number of polls, not a timing assertion
        output = _start_task_output(batch_client, "nc-reboot-pool")
        if output == "booted-with-two\n":
            break
        time.sleep(0.1)
    assert output == "booted-with-two\n"
