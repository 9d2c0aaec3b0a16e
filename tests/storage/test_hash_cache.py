"""The content-hash cache: an unchanged file is not read again, any change to its stat data re-hashes it."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from batchrun.hash_cache import HashCache, Stat, md5_of

OLD = time.time() - 3600


def old_file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    os.utime(path, (OLD, OLD))
    return path


def test_an_unchanged_file_is_not_read_again(tmp_path: Path) -> None:
    data = old_file(tmp_path / "a.txt", b"hello\n")
    store = tmp_path / "cache.json"
    first = HashCache(store)
    assert first.md5(data) == md5_of(data) and first.hashed == 1
    first.save()
    second = HashCache(store)
    assert second.md5(data) == md5_of(data)
    assert second.hashed == 0


def test_a_change_is_hashed_again_even_with_the_same_size_and_mtime_restored(tmp_path: Path) -> None:
    data = old_file(tmp_path / "a.txt", b"hello\n")
    store = tmp_path / "cache.json"
    cache = HashCache(store)
    cache.md5(data)
    cache.save()
    old_file(data, b"HELLO\n")  # same size, same mtime; the ctime moved
    again = HashCache(store)
    assert again.md5(data) == md5_of(data) and again.hashed == 1


def test_a_file_modified_just_before_hashing_is_not_trusted(tmp_path: Path) -> None:
    data = tmp_path / "a.txt"
    data.write_bytes(b"fresh\n")  # mtime now: a change within the same tick could go unseen
    store = tmp_path / "cache.json"
    cache = HashCache(store)
    cache.md5(data)
    cache.save()
    again = HashCache(store)
    again.md5(data)
    assert again.hashed == 1


def test_entries_of_files_no_longer_looked_up_are_dropped(tmp_path: Path) -> None:
    a = old_file(tmp_path / "a.txt", b"a")
    b = old_file(tmp_path / "b.txt", b"b")
    store = tmp_path / "cache.json"
    cache = HashCache(store)
    cache.md5(a)
    cache.md5(b)
    cache.save()
    later = HashCache(store)
    later.md5(a)
    later.save()
    assert set(HashCache(store).entries) == {str(a)}


def test_a_damaged_cache_is_ignored(tmp_path: Path) -> None:
    data = old_file(tmp_path / "a.txt", b"x")
    store = tmp_path / "cache.json"
    store.write_text("{not json", encoding="utf-8")
    cache = HashCache(store)
    assert cache.md5(data) == md5_of(data) and cache.hashed == 1


def test_it_can_be_turned_off(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BATCHRUN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("BATCHRUN_HASH_CACHE", "off")
    assert HashCache.for_workload("w", tmp_path).file is None
    monkeypatch.delenv("BATCHRUN_HASH_CACHE")
    cache = HashCache.for_workload("w", tmp_path)
    assert cache.file is not None and cache.file.parent == tmp_path / "cache" / "hashes"


def test_the_stat_data_vouches_for_an_md5_only_when_it_can(tmp_path: Path) -> None:
    aged = old_file(tmp_path / "aged.txt", b"aged\n")
    fresh = tmp_path / "fresh.txt"
    fresh.write_bytes(b"fresh\n")
    cache = HashCache(tmp_path / "cache.json")
    assert cache.md5_and_stat(aged) == (md5_of(aged), Stat.of(aged))
    assert cache.md5_and_stat(fresh) == (md5_of(fresh), None)  # modified within the racy window
    assert HashCache(None).md5_and_stat(aged) == (md5_of(aged), None)  # BATCHRUN_HASH_CACHE=off
