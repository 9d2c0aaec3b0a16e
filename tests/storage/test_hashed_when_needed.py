"""A plan hashes a local input file only when it needs the MD5: to compare it with a blob's Content-MD5, or
for the digests of the tasks that read its input. A new file no task reads is hashed by the upload, just
before it is sent, and remembered in the hash cache, so the next plan only stats it."""

from __future__ import annotations

import base64
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from azure.storage.blob import BlobServiceClient

import batchrun
from batchrun.hash_cache import HashCache, md5_of, md5_read
from batchrun.local.target import LocalTarget
from batchrun.model import JobSpec, PoolSpec, StorageInput, TaskSpec, Workload
from batchrun.plan.actions import Plan
from batchrun.target import Target, target_from_local
from tests.reconcile.proxy import IMAGE

OLD = time.time() - 3600


@pytest.fixture
def hashed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The files hashed in this process (by a plan or an upload), with the hash cache under ``tmp_path``."""
    monkeypatch.setenv("BATCHRUN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("BATCHRUN_HASH_CACHE", raising=False)
    seen: list[str] = []
    by_plan = HashCache.md5_and_stat

    def counted(cache: HashCache, path: Path) -> Any:
        found = cache.known(path)
        if found is None:
            seen.append(Path(path).name)
        return by_plan(cache, path)

    monkeypatch.setattr(HashCache, "md5_and_stat", counted)

    def read(handle: Any) -> str:
        seen.append(Path(handle.name).name)
        return md5_read(handle)

    monkeypatch.setattr("batchrun.azure.storage.md5_read", read)  # what an upload hashes
    yield seen


@pytest.fixture
def target(local_target: LocalTarget) -> Target:
    return target_from_local(local_target)


def data_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("a.txt", "b.txt", "c.txt"):
        (folder / name).write_text(f"content of {name}\n")
        os.utime(folder / name, (OLD, OLD))
    return folder


def uploaded(plan: Plan) -> list[dict[str, Any]]:
    return [
        f
        for c in plan.changes
        for op in c.operations
        if op.name == "storage.upload"
        for f in op.args["files"]
    ]


def test_new_files_no_task_reads_are_hashed_by_their_upload_only(
    target: Target, tmp_path: Path, blob_service: BlobServiceClient, hashed: list[str]
) -> None:
    folder = data_folder(tmp_path)
    workload = Workload(
        name="hashed-late",
        manifest_path=tmp_path / "m.yaml",
        digest="x",
        inputs=(StorageInput("data", folder, "hashed-late-in", "in/"),),
    )
    plan = batchrun.plan(workload, target=target)
    assert [f["md5"] for f in uploaded(plan)] == [None, None, None] and hashed == []
    batchrun.apply(plan, target=target)
    assert sorted(hashed) == ["a.txt", "b.txt", "c.txt"]  # once each, by the upload
    container = blob_service.get_container_client("hashed-late-in")
    for name in ("a.txt", "b.txt", "c.txt"):
        md5 = container.get_blob_client(f"in/{name}").get_blob_properties().content_settings.content_md5
        assert md5 is not None and bytes(md5) == base64.b64decode(md5_of(folder / name))
    hashed.clear()
    assert not batchrun.plan(workload, target=target).has_changes
    assert hashed == []  # the upload remembered each MD5: the plan only stats the files

    # Without the cache (another machine, a cleared cache) the blobs' MD5s are compared: each file is hashed.
    for entry in (tmp_path / "cache" / "hashes").iterdir():
        entry.unlink()
    assert not batchrun.plan(workload, target=target).has_changes
    assert sorted(hashed) == ["a.txt", "b.txt", "c.txt"]

    # A changed file is hashed and compared; a new one is left to its upload.
    hashed.clear()
    (folder / "a.txt").write_text("new content\n")
    (folder / "d.txt").write_text("d\n")
    for name in ("a.txt", "d.txt"):
        os.utime(folder / name, (OLD + 60, OLD + 60))
    plan = batchrun.plan(workload, target=target)
    assert {f["blob"]: f["md5"] is None for f in uploaded(plan)} == {"in/a.txt": False, "in/d.txt": True}
    assert hashed == ["a.txt"]
    batchrun.apply(plan, target=target)
    assert container.download_blob("in/d.txt").readall() == b"d\n"
    batchrun.destroy(workload, target=target, containers=True)


def test_files_a_task_reads_are_hashed_by_the_plan(target: Target, tmp_path: Path, hashed: list[str]) -> None:
    folder = data_folder(tmp_path)
    (tmp_path / "spare.txt").write_text("spare\n")
    os.utime(tmp_path / "spare.txt", (OLD, OLD))
    workload = Workload(
        name="hashed-early",
        manifest_path=tmp_path / "m.yaml",
        digest="x",
        inputs=(
            StorageInput("data", folder, "hashed-early-in", "in/"),
            StorageInput("spare", tmp_path / "spare.txt", "hashed-early-in", "spare/"),
        ),
        pool=PoolSpec(
            "hashed-early-pool", {"vmSize": "standard_d2s_v3", "virtualMachineConfiguration": IMAGE}
        ),
        job=JobSpec(
            "hashed-early-job",
            {"poolInfo": {"poolId": "hashed-early-pool"}},
            (TaskSpec("t", {"commandLine": "/bin/true"}, inputs=("data",)),),
        ),
    )
    plan = batchrun.plan(workload, target=target)
    md5s = {f["blob"]: f["md5"] for f in uploaded(plan)}
    assert md5s["in/a.txt"] == md5_of(folder / "a.txt")  # in the task's digest
    assert md5s["spare/spare.txt"] is None  # no task reads it
    assert sorted(hashed) == ["a.txt", "b.txt", "c.txt"]


def test_a_saved_plan_hashes_every_file_and_applies_from_another_checkout(
    target: Target, tmp_path: Path, hashed: list[str]
) -> None:
    """A saved plan is checked by content when applied: a file written again with the same bytes (another
    checkout: a new inode and ctime) has not moved; one with other bytes has."""
    from batchrun.api import open_session
    from batchrun.plan.decide_common import PlanOptions
    from batchrun.saved_plans import check_saved_plan, manifest_ref, saved_plan

    folder = data_folder(tmp_path)
    manifest = tmp_path / "saved.yaml"
    manifest.write_text(
        "apiVersion: batchrun/v1\nkind: Workload\nmetadata: {name: hashed-saved}\n"
        "storage:\n  inputs: [{name: data, source: ./data, container: hashed-saved-in, prefix: in/}]\n",
        encoding="utf-8",
    )
    workload = batchrun.load(manifest)
    with open_session(target) as session:
        plan, saved = saved_plan(session, workload, PlanOptions(), manifest_ref(manifest, {}, (), 1000))
    assert all(f["md5"] == md5_of(folder / Path(f["blob"]).name) for f in uploaded(plan))
    assert not any("hashCache" in op.args for c in plan.changes for op in c.operations)

    def checkout(name: str, text: str) -> None:  # a new file in the path's place, as git writes one
        (folder / f"{name}.new").write_text(text)
        os.replace(folder / f"{name}.new", folder / name)
        os.utime(folder / name, (OLD, OLD))

    checkout("a.txt", "content of a.txt\n")
    with open_session(target) as session:
        chosen = check_saved_plan(session, saved, workload)
        batchrun.api.execute(session, chosen)
    assert not batchrun.plan(workload, target=target).has_changes

    with open_session(target) as session:
        _, saved = saved_plan(session, workload, PlanOptions(), manifest_ref(manifest, {}, (), 1000))
    checkout("b.txt", "other content\n")
    with open_session(target) as session, pytest.raises(batchrun.errors.PlanError, match=r"in/b\.txt"):
        check_saved_plan(session, saved, workload)
    batchrun.destroy(workload, target=target, containers=True)
