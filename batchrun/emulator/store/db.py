"""The SQLite store. Each table holds ``(parent, id) -> JSON`` rows; writes are grouped in transactions.

The in-memory model (:mod:`batchrun.emulator.model`) is authoritative while running; every mutation is written
here and committed before the API answers, so a restart rebuilds exactly what was acknowledged.
"""

from __future__ import annotations

import enum
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import orjson

from batchrun.emulator.store.checkpoints import BACKSTOP_PAGES, Checkpointer


class Table(enum.Enum):
    POOLS = "pools"
    NODES = "nodes"
    JOBS = "jobs"
    TASKS = "tasks"
    APPLICATIONS = "applications"
    JOBSCHEDULES = "jobschedules"
    PACKAGES = "packages"


# The statement that writes a row of each table (made once: a task run writes two or three rows).
_PUT = {table: f"INSERT OR REPLACE INTO {table.value} (parent, id, body) VALUES (?, ?, ?)" for table in Table}

SCHEMA_VERSION = 1
# Rows read and decoded together when the store is loaded.
LOAD_BATCH = 1000
# The standard library's encoder for what orjson refuses (json.dumps with options builds one per call).
_STANDARD_ENCODE = json.JSONEncoder(separators=(",", ":"), check_circular=False).encode


def encode(body: dict[str, Any]) -> str:
    """A body's JSON text as stored (and as the API answers): compact, its keys in their order.

    orjson writes a task body in a tenth of the standard library's time (1 us against 10 us), and a task run
    writes its task twice; what orjson refuses (an integer past 64 bits, a key that is not a string) is
    written by the standard library. Text outside ASCII is written as itself, not as ``\\u`` escapes."""
    try:
        return orjson.dumps(body).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return _STANDARD_ENCODE(body)


def decode(text: str) -> Any:
    """A stored JSON text as Python values: orjson, or the standard library for what orjson refuses (``NaN``,
    which older texts may hold). orjson reads an integer past 64 bits as a float: none is stored, as the API
    refuses requests that carry one (Batch's integers are at most 64 bits)."""
    try:
        return orjson.loads(text)
    except ValueError:  # orjson.JSONDecodeError is one
        return json.loads(text)


# A task body with its emulator-internal ``_x`` object moved last (json_set appends), the rest as stored.
_X_LAST = (
    "CASE WHEN json_type(body, '$._x') = 'object' "
    "THEN json_set(json_remove(body, '$._x'), '$._x', json(json_extract(body, '$._x'))) ELSE body END"
)


class StoreError(Exception):
    """A write the database did not take (a full disk, an I/O error): nothing of it was committed."""


class StoreUnreadable(Exception):
    """The database file cannot be opened or read (corrupt, or not an emulator database)."""


class _Transaction:
    """``with store.transaction():`` (a plain class: this runs several times per task, a generator-based
    context manager costs more)."""

    __slots__ = ("_store",)

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> None:
        self._store._begin()

    def __exit__(self, kind: object, error: BaseException | None, trace: object) -> None:
        self._store._end(error)


def _run_hooks(hooks: list[tuple[Callable[[], None], Callable[[], None] | None]], committed: bool) -> None:
    for done, undone in hooks:
        call = done if committed else undone
        if call is not None:
            call()


class Store:
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._connection = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None)
        self._lock = threading.RLock()
        self._depth = 0
        # (on commit, on rollback) of the open transaction, run when its outermost block ends.
        self._hooks: list[tuple[Callable[[], None], Callable[[], None] | None]] = []
        try:
            self._open()
        except sqlite3.DatabaseError as error:
            self._connection.close()
            raise StoreUnreadable(str(error)) from None
        self._checkpoints = Checkpointer(path)

    def _open(self) -> None:
        with self._lock:
            self._connection.execute("PRAGMA journal_mode=WAL")
            # NORMAL in WAL mode survives a crash of this process (kill -9) without an fsync per commit.
            self._connection.execute("PRAGMA synchronous=NORMAL")
            # Checkpoints run on a thread of their own (see checkpoints.py); this is only the backstop.
            self._connection.execute(f"PRAGMA wal_autocheckpoint={BACKSTOP_PAGES}")
            self._connection.execute(
                "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
            )
            for table in Table:
                # The primary key doubles as the (parent, id) index listing relies on.
                self._connection.execute(
                    f"CREATE TABLE IF NOT EXISTS {table.value} (parent TEXT NOT NULL, id TEXT NOT NULL, "
                    "body TEXT NOT NULL, PRIMARY KEY (parent, id)) WITHOUT ROWID"
                )
            self._connection.execute(
                "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),)
            )

    def transaction(self) -> _Transaction:
        """Group writes; nested use joins the outer transaction. Commits when the outermost block ends."""
        return _Transaction(self)

    def after_commit(self, committed: Callable[[], None], undone: Callable[[], None] | None = None) -> None:
        """Run ``committed`` once what was written so far is committed (at once outside a transaction), or
        ``undone`` if the open transaction is rolled back: work that must not start before a state change is
        durable (a task process after its running state) waits for it without a commit of its own."""
        with self._lock:
            if self._depth == 0:
                committed()
            else:
                self._hooks.append((committed, undone))

    def _begin(self) -> None:
        self._lock.acquire()
        if self._depth == 0:
            try:
                self._connection.execute("BEGIN")
            except BaseException:
                self._lock.release()
                raise
        self._depth += 1

    def _end(self, error: BaseException | None) -> None:
        try:
            self._depth -= 1
            if self._depth > 0:
                return
            hooks, self._hooks = self._hooks, []
            if error is not None:
                self._rollback()
                _run_hooks(hooks, committed=False)
                if isinstance(error, sqlite3.Error):
                    raise StoreError(f"{self.path}: {error}") from None
                return
            try:
                self._connection.execute("COMMIT")
            except sqlite3.Error as failure:
                self._rollback()
                _run_hooks(hooks, committed=False)
                raise StoreError(f"{self.path}: {failure}") from None
            self._checkpoints.committed()
            _run_hooks(hooks, committed=True)
        finally:
            self._lock.release()

    def _rollback(self) -> None:
        """Undo the open transaction; SQLite may already have rolled it back itself (a full disk)."""
        with suppress(sqlite3.Error):
            self._connection.execute("ROLLBACK")

    def put(self, table: Table, parent: str, key: str, body: dict[str, Any]) -> str:
        """Write ``body``; returns its stored JSON text."""
        text = encode(body)
        self._write(_PUT[table], (parent, key, text))
        return text

    def delete(self, table: Table, parent: str, key: str) -> None:
        self._write(f"DELETE FROM {table.value} WHERE parent = ? AND id = ?", (parent, key))

    def delete_children(self, table: Table, parent: str) -> None:
        self._write(f"DELETE FROM {table.value} WHERE parent = ?", (parent,))

    def _write(self, statement: str, parameters: tuple[str, ...]) -> None:
        """One statement, in this thread's open transaction (most writes) or else in one of its own."""
        with self._lock:
            if self._depth:
                self._connection.execute(statement, parameters)
                return
            with self.transaction():
                self._connection.execute(statement, parameters)

    def load(self, table: Table) -> Iterator[tuple[str, str, dict[str, Any]]]:
        """Every row of ``table`` in (parent, id) order, read and decoded a batch at a time."""
        for parent, key, body, _ in self.load_with_text(table):
            yield parent, key, body

    def load_with_text(self, table: Table) -> Iterator[tuple[str, str, dict[str, Any], str]]:
        """Every row of ``table`` in (parent, id) order, decoded and as its stored JSON text.

        Memory stays near the size of the decoded bodies: the stored JSON text of only one batch is held at
        once, a batch is decoded in one ``json.loads`` (so its bodies share their key strings instead of each
        holding copies), and repeated parent ids are one string.
        """
        columns = f"SELECT parent, id, body FROM {table.value}"
        query = f"{columns} ORDER BY parent, id LIMIT ?"
        after = f"{columns} WHERE (parent, id) > (?, ?) ORDER BY parent, id LIMIT ?"
        parents: dict[str, str] = {}
        last: tuple[str, str] | None = None
        while True:
            with self._lock:
                try:
                    if last is None:
                        rows = self._connection.execute(query, (LOAD_BATCH,)).fetchall()
                    else:
                        rows = self._connection.execute(after, (*last, LOAD_BATCH)).fetchall()
                    bodies = decode("[" + ",".join(body for _, _, body in rows) + "]")
                    if len(bodies) != len(rows):
                        raise ValueError("a stored body is not one JSON value")
                except (sqlite3.DatabaseError, ValueError) as error:
                    raise StoreUnreadable(str(error)) from None
            if not rows:
                return
            last = (rows[-1][0], rows[-1][1])
            for (parent, key, text), body in zip(rows, bodies, strict=True):
                if not isinstance(body, dict):
                    raise StoreUnreadable(f"{table.value} {parent}/{key}: the stored body is not an object")
                yield parents.setdefault(parent, parent), key, body, text
            if len(rows) < LOAD_BATCH:
                return
            del rows, bodies

    def load_tasks(self) -> Iterator[tuple[str, str, str, Any, Any, Any]]:
        """Every task row in creation order (``_x.seq``): parent, id, stored JSON text (with its ``_x``
        member moved last, as the model keeps it), and the ``state``, ``requiredSlots`` and
        ``executionInfo.result`` SQLite reads out of it.

        Nothing is decoded in Python and rows stream a batch at a time in the order they are kept in, so
        loading leaves no transient copies behind between the texts that stay in memory.
        """
        query = (
            f"SELECT parent, id, {_X_LAST}, json_extract(body, '$.state'), "
            "json_extract(body, '$.requiredSlots'), json_extract(body, '$.executionInfo.result'), "
            "json_type(body) FROM tasks "
            "ORDER BY coalesce(json_extract(body, '$._x.seq'), 0), parent, id"
        )
        parents: dict[str, str] = {}
        with self._lock:
            try:
                cursor = self._connection.execute(query)
                while rows := cursor.fetchmany(LOAD_BATCH):
                    for parent, key, text, state, slots, result, kind in rows:
                        if kind != "object":
                            raise StoreUnreadable(f"tasks {parent}/{key}: the stored body is not an object")
                        yield parents.setdefault(parent, parent), key, text, state, slots, result
            except sqlite3.DatabaseError as error:
                raise StoreUnreadable(str(error)) from None

    def highest_task_sequence(self) -> int:
        """The largest ``_x.seq`` of the stored tasks (-1 without any)."""
        with self._lock:
            try:
                (value,) = self._connection.execute(
                    "SELECT max(coalesce(json_extract(body, '$._x.seq'), 0)) FROM tasks"
                ).fetchone()
            except sqlite3.DatabaseError as error:
                raise StoreUnreadable(str(error)) from None
        return -1 if value is None else int(value)

    def close(self) -> None:
        self._checkpoints.close()
        with self._lock:
            self._connection.close()
