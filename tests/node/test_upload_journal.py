"""The journal of acknowledged output uploads and the check made after a storage crash (real Azurite).

* Every acknowledged upload of a run is journaled with its file, size, MD5 and headers; entries older than the
  keep time are dropped, unless a recovery holds the journal; ``settle`` waits for uploads under way.
* ``restore_upload`` leaves a blob storage still holds alone, uploads a missing one again from its file
  (with its headers, creating a lost container again) through a write-only SAS, reading back with the
  account key, and refuses when the file changed or is gone.
* The latest upload of a blob is the one checked.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import pytest
from azure.storage.blob import BlobServiceClient, ContainerClient

from batchrun.emulator.node import NodeIdentity, StorageAccess, task_directory
from batchrun.emulator.node.outputs import CannotRestore, restore_upload
from batchrun.emulator.node.upload_journal import RunRecorder, UploadEntry, UploadJournal
from batchrun.emulator.scheduler.storage_recovery import latest_per_blob
from batchrun.local.azurite import AzuriteEndpoint
from tests.node.conftest import container_sas_url, run

STARTED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)


@pytest.fixture
def container(node_blobs: BlobServiceClient) -> Iterator[ContainerClient]:
    client = node_blobs.create_container(f"j{uuid.uuid4().hex[:12]}")
    yield client
    if client.exists():
        client.delete_container()


def entry(acknowledged: float, blob: str = "b.txt", container_url: str = "http://h/a/c?sig=x") -> UploadEntry:
    return UploadEntry(
        acknowledged, "job", "task", STARTED, Path("/nowhere"), container_url, blob, Path("/f"), 1, b"m"
    )


def test_entries_are_kept_for_the_keep_time_unless_held() -> None:
    now = [1000.0]
    journal = UploadJournal(keep_seconds=60, clock=lambda: now[0])
    journal.record(entry(1000.0, "old"))
    now[0] = 1100.0
    journal.record(entry(1100.0, "new"))
    assert [e.blob_name for e in journal.since(0)] == ["new"]
    with journal.held():
        now[0] = 1200.0
        journal.record(entry(1200.0, "newer"))
        assert [e.blob_name for e in journal.since(0)] == ["new", "newer"]
    assert [e.blob_name for e in journal.since(1150.0)] == ["newer"]


def test_settle_waits_for_uploads_that_began_before() -> None:
    journal = UploadJournal()
    began = threading.Event()
    release = threading.Event()

    def upload() -> None:
        with journal.uploading():
            began.set()
            release.wait(10)
            journal.record(entry(time.time(), "late"))

    worker = threading.Thread(target=upload)
    worker.start()
    began.wait(10)
    assert journal.settle(time.time(), timeout=0.2) is False  # still under way
    release.set()
    assert journal.settle(time.time(), timeout=10) is True
    worker.join()
    assert [e.blob_name for e in journal.since(0)] == ["late"]


def test_the_latest_upload_of_each_blob_is_checked() -> None:
    first, other, second = entry(1.0, "x"), entry(2.0, "y"), entry(3.0, "x")
    third = entry(4.0, "x", container_url="http://h/a/d?sig=x")  # same name, another container
    assert latest_per_blob([first, other, second, third]) == [other, second, third]


def test_a_run_journals_its_acknowledged_uploads(
    node: NodeIdentity, storage: StorageAccess, azurite: AzuriteEndpoint, container: ContainerClient
) -> None:
    from batchrun.emulator.node import TaskLaunch, run_task

    sas = container_sas_url(azurite, container.container_name, "wc")  # write-only, as Batch asks for
    journal = UploadJournal()
    spec = {
        "commandLine": "/bin/sh -c 'echo one > a.txt; echo two > b.txt'",
        "outputFiles": [
            {
                "filePattern": "*.txt",
                "destination": {
                    "container": {
                        "containerUrl": sas,
                        "path": "out",
                        "uploadHeaders": [{"name": "Content-Type", "value": "text/plain"}],
                    }
                },
                "uploadOptions": {"uploadCondition": "tasksuccess"},
            }
        ],
    }
    launch = TaskLaunch("task", "job1", "task1", spec)
    outcome = run_task(node, launch, storage, threading.Event(), journal)
    assert outcome.result == "success", outcome.failure_info
    entries = journal.since(0)
    assert sorted(e.blob_name for e in entries) == ["out/a.txt", "out/b.txt"]
    first = next(e for e in entries if e.blob_name == "out/a.txt")
    assert (first.job_id, first.task_id, first.size) == ("job1", "task1", 4)
    assert first.started == outcome.start_time
    assert first.headers == (("Content-Type", "text/plain"),)
    assert first.path == task_directory(node, "job1", "task1") / "wd" / "a.txt"
    assert "sig=" not in repr(first) and "sig=" not in str(first)
    # Every output carries its Content-MD5, so a later check compares content whatever the size.
    properties = container.get_blob_client("out/a.txt").get_blob_properties()
    assert bytes(properties.content_settings.content_md5) == first.md5

    # Storage loses the blob (and, for the second check, the whole container): uploaded again, same headers.
    container.delete_blob("out/a.txt")
    recorder = RunRecorder(journal, "job1", "task1", first.started, first.task_dir)
    assert restore_upload(first, storage, recorder) is True
    restored = container.get_blob_client("out/a.txt")
    assert restored.download_blob().readall() == b"one\n"
    assert restored.get_blob_properties().content_settings.content_type == "text/plain"
    assert restore_upload(first, storage, recorder) is False  # held now: nothing to do
    container.delete_container()
    assert restore_upload(first, storage, recorder) is True
    assert restored.download_blob().readall() == b"one\n"
    assert len(journal.since(0)) == 4  # the uploads made again are journaled too
    assert "again" in (first.task_dir / "fileuploadout.txt").read_text()

    # The file changed (or is gone) since the upload: the lost output cannot be made to land.
    restored.delete_blob()
    first.path.write_text("changed\n")
    with pytest.raises(CannotRestore, match="changed after its upload") as changed:
        restore_upload(first, storage, recorder)
    assert changed.value.lasting
    first.path.unlink()
    with pytest.raises(CannotRestore, match="is gone"):
        restore_upload(first, storage, recorder)


def test_runs_without_a_journal_upload_as_before(
    node: NodeIdentity, storage: StorageAccess, azurite: AzuriteEndpoint, container: ContainerClient
) -> None:
    sas = container_sas_url(azurite, container.container_name, "wc")
    spec = {
        "commandLine": "/bin/sh -c 'echo x > o.txt'",
        "outputFiles": [
            {
                "filePattern": "o.txt",
                "destination": {"container": {"containerUrl": sas}},
                "uploadOptions": {"uploadCondition": "tasksuccess"},
            }
        ],
    }
    assert run(node, spec, storage).result == "success"
    assert container.download_blob("o.txt").readall() == b"x\n"
