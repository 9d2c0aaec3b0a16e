"""Every apply step resumes from a real interruption: the table of docs/reconciler.md, one row per case.

An apply runs in a subprocess whose Batch, management and storage requests go through loopback proxies.
At a chosen request the proxy lets the service process it, then SIGKILLs the subprocess (nothing of
batchrun runs after that point: no cleanup, no ``finally``) and hangs up. A second apply, in this process
and straight to the target, must then finish the work: it succeeds, the next plan has no changes, every
manifest task exists exactly once and every input blob is there.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

import batchrun
from tests.reconcile.proxy import Decision, FaultProxy

if TYPE_CHECKING:
    from azure.batch import BatchClient
    from azure.storage.blob import BlobServiceClient

    from batchrun.local.target import LocalTarget
    from batchrun.target import Target

APPLY_SCRIPT = """
import sys
from msgspec.structs import replace
from pathlib import Path

import batchrun
from batchrun.local.target import running_target
from batchrun.target import target_from_local

home, manifest, batch_url, blob_url = sys.argv[1:5]
target = target_from_local(running_target(Path(home)))
target = replace(target, batch_url=batch_url, management_url=batch_url, blob_url=blob_url)
batchrun.apply(manifest, target=target)
print("applied")
"""

TASKS = 250


@dataclass
class KillAt:
    """SIGKILL the client once the service has processed the ``nth`` request matching ``method`` and
    ``suffix`` (of the path); with ``before``, instead of forwarding that request."""

    method: str
    suffix: str
    nth: int = 1
    before: bool = False
    seen: int = 0
    pid: int = 0
    killed: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)

    def decide(self, method: str, path: str) -> Decision:
        with self.lock:
            if self.killed or method != self.method or not path.endswith(self.suffix):
                return "pass"
            self.seen += 1
            if self.seen != self.nth:
                return "pass"
            if not self.before:
                return "reset_after"
        self.kill()
        return "hang_up"

    def kill(self) -> None:
        with self.lock:
            self.killed = True
            os.kill(self.pid, signal.SIGKILL)


def manifest(folder: Path, name: str) -> Path:
    (folder / "in").mkdir(exist_ok=True)
    for index in range(6):
        (folder / "in" / f"part-{index}.txt").write_text(f"part {index}\n" * 100)
    (folder / "tools").mkdir(exist_ok=True)
    (folder / "tools" / "run.sh").write_text("#!/bin/sh\necho tool\n")
    path = folder / f"{name}.yaml"
    path.write_text(
        f"""apiVersion: batchrun/v1
kind: Workload
metadata: {{name: {name}}}
storage:
  inputs: [{{name: data, source: ./in, container: {name}-in}}]
packages: [{{id: {name}-tools, version: "1.0", source: ./tools}}]
pool:
  id: {name}-pool
  vmSize: standard_d2s_v3
  virtualMachineConfiguration:
    imageReference: {{publisher: canonical, offer: ubuntu-24_04-lts, sku: server, version: latest}}
    nodeAgentSKUId: batch.node.ubuntu 24.04
  targetDedicatedNodes: 0
  packages: [{name}-tools]
job:
  id: {name}-job
  tasks:
    - id: t-${{i:03d}}
      foreach: {{i: {{range: [1, {TASKS}]}}}}
      commandLine: /bin/echo ${{i}}
"""
    )
    return path


@dataclass(frozen=True)
class Row:
    step: str
    plane: str  # "batch" (Batch and management) or "blob"
    method: str
    suffix: str
    nth: int = 1
    before: bool = False  # killed before the service sees the request, else right after it processed it


ROWS = [
    Row("upload", "blob", "PUT", ".txt", 3),
    Row("package-version-created", "batch", "PUT", "/versions/1.0"),
    Row("package-uploaded", "batch", "POST", "/activate", before=True),
    Row("pool-create", "batch", "POST", "/pools"),
    Row("job-create", "batch", "POST", "/jobs"),
    Row("task-adds", "batch", "POST", "/addtaskcollection", 2),
]


@pytest.fixture
def cleanup(target: Target) -> Iterator[list[Path]]:
    made: list[Path] = []
    yield made
    for path in made:
        batchrun.destroy(path, target=target, containers=True, confirm_replace=True)


@pytest.mark.parametrize("row", ROWS, ids=[row.step for row in ROWS])
def test_a_rerun_finishes_an_apply_killed_after(
    row: Row,
    tmp_path: Path,
    local_target: LocalTarget,
    target: Target,
    batch_client: BatchClient,
    blob_service: BlobServiceClient,
    cleanup: list[Path],
) -> None:
    name = f"int-{row.step}"
    path = manifest(tmp_path, name)
    cleanup.append(path)
    killer = KillAt(row.method, row.suffix, row.nth, row.before)
    batch_fault = killer.decide if row.plane == "batch" else (lambda m, p: "pass")
    blob_fault = killer.decide if row.plane == "blob" else (lambda m, p: "pass")
    account = target.blob_url.rstrip("/").rsplit("/", 1)[1]
    blob_upstream = target.blob_url.rstrip("/").rsplit("/", 1)[0]
    with (
        FaultProxy(target.batch_url, batch_fault, after=killer.kill) as batch_proxy,
        FaultProxy(blob_upstream, blob_fault, after=killer.kill) as blob_proxy,
    ):
        env = {key: value for key, value in os.environ.items() if not key.startswith("AZURE_")}
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                APPLY_SCRIPT,
                str(local_target.home),
                str(path),
                batch_proxy.url,
                f"{blob_proxy.url}/{account}",
            ],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killer.pid = process.pid
        out, err = process.communicate(timeout=300)
    assert killer.killed and process.returncode == -signal.SIGKILL, (process.returncode, out, err)
    assert "applied" not in out

    batchrun.apply(path, target=target)  # the re-run: straight to the target, must finish the work

    assert not batchrun.plan(path, target=target).has_changes
    ids = [task.id for task in batch_client.list_tasks(f"{name}-job", select=["id"])]
    assert len(ids) == TASKS and len(set(ids)) == TASKS
    blobs = {blob.name for blob in blob_service.get_container_client(f"{name}-in").list_blobs()}
    assert blobs == {f"part-{index}.txt" for index in range(6)}
    pool = batch_client.get_pool(f"{name}-pool")
    assert [(ref.application_id, ref.version) for ref in pool.application_package_references or ()] == [
        (f"{name}-tools", "1.0")
    ]


@pytest.fixture(scope="module")
def target(local_target: LocalTarget) -> Target:
    from batchrun.target import target_from_local

    return target_from_local(local_target)


def test_a_changed_task_killed_between_its_delete_and_its_add_is_added_by_the_rerun(
    tmp_path: Path,
    local_target: LocalTarget,
    target: Target,
    batch_client: BatchClient,
    cleanup: list[Path],
) -> None:
    name = "int-replace"
    path = manifest(tmp_path, name)
    cleanup.append(path)
    batchrun.apply(path, target=target)
    path.write_text(path.read_text().replace("/bin/echo ${i}", "/bin/echo changed ${i}"))
    killer = KillAt("DELETE", "/tasks/t-007")  # tasks are deleted, then added again with the new definition
    account = target.blob_url.rstrip("/").rsplit("/", 1)[1]
    with FaultProxy(target.batch_url, killer.decide, after=killer.kill) as batch_proxy:
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                APPLY_SCRIPT,
                str(local_target.home),
                str(path),
                batch_proxy.url,
                target.blob_url.rstrip("/").rsplit("/", 1)[0] + f"/{account}",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        killer.pid = process.pid
        out, err = process.communicate(timeout=300)
    assert killer.killed and process.returncode == -signal.SIGKILL, (process.returncode, out, err)
    batchrun.apply(path, target=target)
    assert not batchrun.plan(path, target=target).has_changes
    task = batch_client.get_task(f"{name}-job", "t-007")
    assert task.command_line == "/bin/echo changed 7"
    assert sum(1 for _ in batch_client.list_tasks(f"{name}-job", select=["id"])) == TASKS
