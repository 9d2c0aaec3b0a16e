"""Work that must wait for a state change to be durable (a task process after its running state) runs once the
outermost transaction commits, never when it is rolled back."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from batchrun.emulator.store import Store, StoreError, Table


def _stored(path: Path) -> list[str]:
    connection = sqlite3.connect(str(path))
    try:
        return [key for (key,) in connection.execute("SELECT id FROM tasks ORDER BY id")]
    finally:
        connection.close()


def test_hooks_run_after_the_outermost_commit_and_see_the_rows_committed(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator.db")
    seen: list[list[str]] = []
    with store.transaction():
        store.put(Table.TASKS, "job", "a", {"id": "a"})
        with store.transaction():
            store.put(Table.TASKS, "job", "b", {"id": "b"})
            store.after_commit(lambda: seen.append(_stored(tmp_path / "emulator.db")))
        assert seen == []  # the inner block ended; nothing is committed yet
    assert seen == [["a", "b"]]  # another connection sees both rows when the hook runs
    store.close()


def test_outside_a_transaction_a_hook_runs_at_once(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator.db")
    seen: list[str] = []
    store.after_commit(lambda: seen.append("now"))
    assert seen == ["now"]
    store.close()


def test_a_rolled_back_transaction_runs_the_undo_hooks_only(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator.db")
    events: list[str] = []
    with pytest.raises(RuntimeError), store.transaction():
        store.put(Table.TASKS, "job", "a", {"id": "a"})
        store.after_commit(lambda: events.append("committed"), lambda: events.append("undone"))
        raise RuntimeError("a bug in the middle of a change")
    assert events == ["undone"] and _stored(tmp_path / "emulator.db") == []
    with store.transaction():  # the hooks of the failed transaction are gone
        store.put(Table.TASKS, "job", "b", {"id": "b"})
    assert events == ["undone"]
    store.close()


def test_a_commit_the_database_refuses_runs_the_undo_hooks(tmp_path: Path) -> None:
    store = Store(tmp_path / "emulator.db")
    events: list[str] = []
    with pytest.raises(StoreError), store.transaction():
        store.after_commit(lambda: events.append("committed"), lambda: events.append("undone"))
        raise sqlite3.OperationalError("database or disk is full")
    assert events == ["undone"]
    store.close()
