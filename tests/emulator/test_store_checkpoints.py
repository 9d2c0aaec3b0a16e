"""The write-ahead log is copied into the database file by a thread of its own, never by the commit that
fills it (whose thread starts the next task processes): commits go on meanwhile; the copy keeps the syncs."""

from __future__ import annotations

import shutil
import sqlite3
import threading
import time
from pathlib import Path

import pytest

from batchrun.emulator.store import Store, Table
from batchrun.emulator.store.checkpoints import Checkpointer
from tests.emulator.test_faults import fill, tiny_tmpfs

BODY = {"id": "x", "text": "y" * 5000}  # two pages of the log a commit


def _rows_in_database_file(path: Path, copy: Path) -> int:
    """The task rows the database file holds by itself, without its write-ahead log."""
    shutil.copyfile(path, copy)
    connection = sqlite3.connect(str(copy))
    try:
        tables = {name for (name,) in connection.execute("SELECT name FROM sqlite_master")}
        return connection.execute("SELECT count(*) FROM tasks").fetchone()[0] if "tasks" in tables else 0
    finally:
        connection.close()


def _checkpoint_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == "batch-store-checkpoints"]


def _wait_for(condition: object, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_the_stores_commits_leave_the_log_to_the_checkpoint_thread(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # With the thread kept out, 1,200 commits of two pages each pass SQLite's own limit (1,000 pages), at
    # which the committing thread would copy the log itself: the database file stays as it was.
    monkeypatch.setattr(Checkpointer, "committed", lambda self: None)
    store = Store(tmp_path / "emulator.db")
    for index in range(1200):
        store.put(Table.TASKS, "job", f"t{index:04d}", BODY)
    assert _rows_in_database_file(tmp_path / "emulator.db", tmp_path / "copy.db") == 0
    assert (tmp_path / "emulator.db-wal").stat().st_size > 1000 * 4096
    store.close()


def test_commits_are_copied_into_the_database_file_soon_after(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator.db")
    for index in range(50):
        with store.transaction():
            store.put(Table.TASKS, "job", f"t{index:04d}", BODY)
    _wait_for(lambda: _rows_in_database_file(tmp_path / "emulator.db", tmp_path / "copy.db") == 50)
    assert _checkpoint_threads()
    store.close()
    assert not _checkpoint_threads()  # closing the store stops the thread


def test_checkpoints_are_paced_and_the_thread_ends_when_idle(tmp_path: Path) -> None:
    path = tmp_path / "emulator.db"
    Store(path).close()  # the schema, in WAL mode
    writer = sqlite3.connect(str(path), isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    checkpointer = Checkpointer(path, interval=0.2, idle=0.3)
    started = time.monotonic()
    for index in range(20):  # 20 commits 20 ms apart share a few checkpoints, one per 0.2 s at most
        writer.execute("INSERT INTO tasks (parent, id, body) VALUES ('job', ?, '{}')", (f"t{index}",))
        checkpointer.committed()
        time.sleep(0.02)
    _wait_for(lambda: _rows_in_database_file(path, tmp_path / "copy.db") == 20)
    assert 1 <= checkpointer.checkpoints <= (time.monotonic() - started) / 0.2 + 1, checkpointer.checkpoints
    _wait_for(lambda: not _checkpoint_threads())  # nothing more to copy: the thread has ended
    writer.execute("INSERT INTO tasks (parent, id, body) VALUES ('job', 'late', '{}')")
    checkpointer.committed()  # a new commit starts it again
    _wait_for(lambda: _rows_in_database_file(path, tmp_path / "copy.db") == 21)
    checkpointer.close()
    writer.close()
    assert not _checkpoint_threads()


def test_a_checkpoint_that_fails_on_a_full_disk_is_logged_once_and_retried(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with tiny_tmpfs(tmp_path / "disk", "4m") as disk:
        path = disk / "emulator.db"
        Store(path).close()
        writer = sqlite3.connect(str(path), isolation_level=None)
        writer.execute("PRAGMA wal_autocheckpoint=0")
        with writer:
            for index in range(150):  # some 900 KiB in the log, which the database file must grow to hold
                writer.execute(
                    "INSERT INTO tasks (parent, id, body) VALUES ('job', ?, ?)", (f"t{index}", "y" * 5000)
                )
        filler = fill(disk)
        checkpointer = Checkpointer(path, interval=0.05, idle=5.0)
        with caplog.at_level("WARNING", logger="batchrun.emulator.store.checkpoints"):
            for _ in range(4):
                checkpointer.committed()
                time.sleep(0.15)
        warnings = [
            record.getMessage() for record in caplog.records if "write-ahead log" in record.getMessage()
        ]
        assert len(warnings) == 1, warnings
        assert "full" in warnings[0]
        assert checkpointer.checkpoints == 0
        filler.unlink()
        checkpointer.committed()
        _wait_for(lambda: checkpointer.checkpoints >= 1)
        checkpointer.close()
        writer.close()
        assert _rows_in_database_file(path, tmp_path / "copy.db") == 150
