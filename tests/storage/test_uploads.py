"""Uploads of storage inputs against Azurite: a file whose stat data vouches for its planned MD5 is read
once and not hashed again; a file the plan did not hash is hashed just before it is sent, and remembered; a
file that changed after the plan is never left under the planned MD5."""

from __future__ import annotations

import base64
import os
import time
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from batchrun.azure.storage import upload_files
from batchrun.errors import ApplyError
from batchrun.hash_cache import HashCache, Stat, md5_of
from batchrun.local.target import LocalTarget
from batchrun.local_inputs import local_files

OLD = time.time() - 3600


def planned(folder: Path, tmp_path: Path) -> list[dict[str, object]]:
    files = local_files(folder, "data/", HashCache(tmp_path / "hashes.json"))
    return [{"blob": f.blob, "path": f.path, "md5": f.md5, "size": f.size, "stat": f.stat} for f in files]


def source(tmp_path: Path, content: bytes) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    path = folder / "a.bin"
    path.write_bytes(content)
    os.utime(path, (OLD, OLD))
    return folder


def test_a_vouched_file_is_sent_with_its_planned_md5(blob_service: BlobServiceClient, tmp_path: Path) -> None:
    folder = source(tmp_path, os.urandom(3 * 1024 * 1024))
    files = planned(folder, tmp_path)
    assert files[0]["stat"] is not None
    blob_service.create_container("vouched")
    upload_files(blob_service, "vouched", files, "w")
    stored = blob_service.get_blob_client("vouched", "data/a.bin")
    md5 = stored.get_blob_properties().content_settings.content_md5
    assert base64.b64encode(bytes(md5)).decode() == files[0]["md5"]
    assert stored.download_blob().readall() == (folder / "a.bin").read_bytes()


@pytest.mark.parametrize("vouched", [True, False], ids=["stat data planned", "no stat data planned"])
@pytest.mark.parametrize("in_blocks", [False, True], ids=["one request", "in blocks"])
def test_a_file_changed_after_the_plan_is_refused_and_not_left_behind(
    local_target: LocalTarget, tmp_path: Path, vouched: bool, in_blocks: bool
) -> None:
    # In blocks, storage keeps the Content-MD5 it is given without checking it: the check is batchrun's.
    service = BlobServiceClient.from_connection_string(
        local_target.connection_string, max_single_put_size=256 * 1024, max_block_size=256 * 1024
    )
    size = 1024 * 1024 if in_blocks else 1024
    folder = source(tmp_path, b"p" * size)
    files = planned(folder, tmp_path)
    if not vouched:
        files[0]["stat"] = None
    # The same size and the same mtime: only the content (and the ctime) moved.
    (folder / "a.bin").write_bytes(b"c" * size)
    os.utime(folder / "a.bin", (OLD, OLD))
    container = f"changed-{'v' if vouched else 'n'}-{'b' if in_blocks else 'o'}"
    service.create_container(container)
    with pytest.raises(ApplyError, match="changed after the plan was made"):
        upload_files(service, container, files, "w")
    with pytest.raises(ResourceNotFoundError):
        service.get_blob_client(container, "data/a.bin").get_blob_properties()


@pytest.mark.parametrize("in_blocks", [False, True], ids=["one request", "in blocks"])
def test_a_vouched_file_changed_while_it_is_sent_is_not_left_behind(
    local_target: LocalTarget, tmp_path: Path, in_blocks: bool
) -> None:
    """The file's stat data vouches for its planned MD5 when the upload starts (so it is not hashed again);
    it is written again as its first request leaves. Storage checks a one-request upload's Content-MD5
    itself; for an upload in blocks only the stat data checked once it is sent can tell."""
    folder = source(tmp_path, b"p" * (1024 * 1024 if in_blocks else 1024))
    files = planned(folder, tmp_path)
    assert files[0]["stat"] is not None
    written: list[bool] = []

    def write_again(request: object) -> None:
        if not written:
            written.append(True)
            (folder / "a.bin").write_bytes(b"c" * int(str(files[0]["size"])))
            os.utime(folder / "a.bin", (OLD, OLD))

    service = BlobServiceClient.from_connection_string(
        local_target.connection_string,
        max_single_put_size=256 * 1024,
        max_block_size=256 * 1024,
        raw_request_hook=write_again,
    )
    container = f"during-{'b' if in_blocks else 'o'}"
    BlobServiceClient.from_connection_string(local_target.connection_string).create_container(container)
    with pytest.raises(ApplyError, match="changed after the plan was made"):
        upload_files(service, container, files, "w")
    assert written
    with pytest.raises(ResourceNotFoundError):
        service.get_blob_client(container, "data/a.bin").get_blob_properties()


def unhashed(folder: Path) -> list[dict[str, object]]:
    """What a plan sends for new files no task reads: no MD5, the stat data the files had."""
    files = local_files(folder, "data/", HashCache(None), hash_new=False)
    assert all(f.md5 is None and f.stat is not None for f in files)
    return [{"blob": f.blob, "path": f.path, "md5": f.md5, "size": f.size, "stat": f.stat} for f in files]


def test_a_file_the_plan_did_not_hash_is_hashed_sent_and_remembered(
    blob_service: BlobServiceClient, tmp_path: Path
) -> None:
    folder = source(tmp_path, os.urandom(2 * 1024 * 1024))
    cache = tmp_path / "hashes.json"
    blob_service.create_container("unhashed")
    upload_files(blob_service, "unhashed", unhashed(folder), "w", hash_cache=str(cache))
    stored = blob_service.get_blob_client("unhashed", "data/a.bin")
    md5 = base64.b64encode(bytes(stored.get_blob_properties().content_settings.content_md5)).decode()
    assert md5 == md5_of(folder / "a.bin")
    # The next plan only stats the file: the upload remembered what it hashed.
    assert HashCache(cache).known(folder / "a.bin") == (md5, Stat.of(folder / "a.bin"))


def test_a_file_the_plan_did_not_hash_changed_since_is_refused(
    blob_service: BlobServiceClient, tmp_path: Path
) -> None:
    folder = source(tmp_path, b"p" * 1024)
    files = unhashed(folder)
    (folder / "a.bin").write_bytes(b"c" * 1024)  # same size; mtime and ctime moved
    cache = tmp_path / "hashes.json"
    blob_service.create_container("unhashed-changed")
    with pytest.raises(ApplyError, match="changed after the plan was made"):
        upload_files(blob_service, "unhashed-changed", files, "w", hash_cache=str(cache))
    with pytest.raises(ResourceNotFoundError):
        blob_service.get_blob_client("unhashed-changed", "data/a.bin").get_blob_properties()
    assert HashCache(cache).entries == {}


def test_a_recently_written_file_the_plan_did_not_hash_is_hashed_as_it_is_sent_too(
    local_target: LocalTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Written just now, a file could change again within its timestamp tick with the same stat data (a
    coarse file system; simulated: the stat data is held still). Its stat data cannot vouch for what was
    hashed, so the bytes sent are hashed too: a change between the hash and the send is refused, even in
    blocks, whose Content-MD5 storage does not check."""
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a.bin").write_bytes(b"p" * (1024 * 1024))  # mtime: now
    files = unhashed(folder)
    planned = Stat(*files[0]["stat"])  # type: ignore[misc]
    monkeypatch.setattr(Stat, "of", classmethod(lambda cls, path: planned))
    written: list[bool] = []

    def write_again(request: object) -> None:
        if not written:
            written.append(True)
            (folder / "a.bin").write_bytes(b"c" * (1024 * 1024))

    service = BlobServiceClient.from_connection_string(
        local_target.connection_string,
        max_single_put_size=256 * 1024,
        max_block_size=256 * 1024,
        raw_request_hook=write_again,
    )
    BlobServiceClient.from_connection_string(local_target.connection_string).create_container("racy")
    with pytest.raises(ApplyError, match="changed after the plan was made"):
        upload_files(service, "racy", files, "w")
    assert written
    with pytest.raises(ResourceNotFoundError):
        service.get_blob_client("racy", "data/a.bin").get_blob_properties()


def test_a_file_that_grew_after_it_was_listed_is_planned_at_its_size_then(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The size sent is that of the stat data the plan keeps, never the listing's older one: a file sent cut
    short under the MD5 of all of it would pass for the file."""
    import batchrun.local_inputs as local_inputs
    from batchrun.manifest.sources import SourceEntry

    folder = source(tmp_path, b"x" * 3000)

    def listed_before_it_grew(path: Path) -> list[SourceEntry]:
        return [SourceEntry(folder / "a.bin", "a.bin", False, 2000)]

    monkeypatch.setattr(local_inputs, "source_files", listed_before_it_grew)
    for hash_new in (True, False):
        (file,) = local_files(folder, "data/", HashCache(tmp_path / "hashes.json"), hash_new=hash_new)
        assert file.size == 3000 and file.stat is not None and file.stat[0] == 3000


def test_an_upload_whose_size_is_not_its_stat_datas_is_refused(
    local_target: LocalTarget, tmp_path: Path
) -> None:
    """In blocks, storage keeps the Content-MD5 it is given without checking it: a size that is not the stat
    data's would send the file cut short under the MD5 of all of it."""
    service = BlobServiceClient.from_connection_string(
        local_target.connection_string, max_single_put_size=256 * 1024, max_block_size=256 * 1024
    )
    folder = source(tmp_path, b"x" * (600 * 1024))
    files = planned(folder, tmp_path)
    assert files[0]["stat"] is not None
    files[0]["size"] = 300 * 1024
    service.create_container("cut-short")
    with pytest.raises(ApplyError, match="changed after the plan was made"):
        upload_files(service, "cut-short", files, "w")
    with pytest.raises(ResourceNotFoundError):
        service.get_blob_client("cut-short", "data/a.bin").get_blob_properties()
