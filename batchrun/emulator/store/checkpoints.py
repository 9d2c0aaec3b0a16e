"""The write-ahead log copied into the database file on a thread of its own, not in the commit that fills it.

In WAL mode a commit appends to the log; a *checkpoint* copies the log's pages into the database file and,
with ``synchronous=NORMAL``, syncs the log before and the database after (``fdatasync``, which waits on the
disk: 10-15 ms a checkpoint here). SQLite's automatic checkpoint runs inside the commit that takes the log
past its limit, on the thread that committed: for the emulator that is the thread that records the runs that
end and starts the next ones, and on a disk every task slot sat idle for those syncs (500 tasks of
``/bin/true`` on 4 slots: 2 checkpoints, some 28 ms of 350).

So the store's connection leaves checkpoints to :class:`Checkpointer`: once a commit has written to the log,
a thread with a connection of its own runs a ``PASSIVE`` checkpoint (it never waits for the store's writer,
which goes on appending meanwhile), at most one every :data:`CHECKPOINT_INTERVAL` seconds. It keeps the
same syncs, so a crash of the machine loses at most the last commits, as before, and never the database. The
thread ends after :data:`IDLE_SECONDS` without commits (closing its connection) and is started again by the
next. Should its checkpoints fail (a full disk), the store's own automatic checkpoint, set to a larger log
(:data:`BACKSTOP_PAGES`), still bounds the log.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from pathlib import Path

_LOG = logging.getLogger(__name__)
CHECKPOINT_INTERVAL = 0.25
IDLE_SECONDS = 5.0
# The store connection's own automatic checkpoint, for when this thread cannot keep up or fails (4 KiB pages:
# 32 MiB of log). SQLite's default is 1,000 pages.
BACKSTOP_PAGES = 8192
# How long the thread's connection waits for a lock another connection holds before the checkpoint is
# retried after the next commit (a passive checkpoint itself never waits).
BUSY_TIMEOUT = 1.0


class Checkpointer:
    """Checkpoints the database at ``path`` after commits, on its own thread; :meth:`close` stops it."""

    def __init__(self, path: Path, interval: float = CHECKPOINT_INTERVAL, idle: float = IDLE_SECONDS) -> None:
        self._path = path
        self._interval = interval
        self._idle = idle
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._due = False  # a commit wrote to the log since the last checkpoint began
        self._thread: threading.Thread | None = None
        self._closed = False
        self._failing = False  # the last checkpoint failed (logged once until one succeeds)
        self.checkpoints = 0  # checkpoints run so far (for tests and benches)

    def committed(self) -> None:
        """A transaction has committed: a checkpoint follows within the interval. Cheap, as every commit
        calls it: while one is due already, nothing is locked."""
        if self._due:  # the thread clears it before its checkpoint, which then covers this commit
            return
        with self._lock:
            if self._closed:
                return
            self._due = True
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="batch-store-checkpoints", daemon=True)
                self._thread.start()
            else:
                self._changed.notify()

    def close(self, timeout: float = 10.0) -> None:
        """Stop the thread, after the checkpoint it may be running (the store closes its connection next)."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._changed.notify()
        if thread is not None:
            thread.join(timeout)

    def _run(self) -> None:
        try:
            connection = sqlite3.connect(
                str(self._path), check_same_thread=False, isolation_level=None, timeout=BUSY_TIMEOUT
            )
        except sqlite3.Error as error:
            self._failed(error)
            with self._lock:
                self._thread = None
                self._due = False  # the next commit tries again
            return
        try:
            # The log is synced before the database is written and the database after, as the store's own
            # checkpoints did: NORMAL, not OFF, which could leave a database half-written by a power cut.
            connection.execute("PRAGMA synchronous=NORMAL")
            while self._next():
                try:
                    connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
                except sqlite3.Error as error:
                    self._failed(error)
                else:
                    self.checkpoints += 1
                    self._failing = False
        finally:
            connection.close()

    def _next(self) -> bool:
        """Wait for the next checkpoint to be due (True), or for the end of the thread (False): closed, or
        idle for a while (the next commit starts a new thread)."""
        with self._lock:
            # At most one checkpoint an interval: the commits meanwhile share the next (a commit's notify
            # does not cut this wait short; closing does).
            deadline = time.monotonic() + self._interval
            while not self._closed and (left := deadline - time.monotonic()) > 0:
                self._changed.wait(left)
            while not self._due and not self._closed:
                if not self._changed.wait(self._idle) and not self._due:
                    self._thread = None
                    return False
            if self._closed:
                self._thread = None
                return False
            self._due = False
            return True

    def _failed(self, error: sqlite3.Error) -> None:
        if not self._failing:
            _LOG.warning(
                "%s: copying the write-ahead log into the database failed (%s); the store's own checkpoint "
                "takes over once the log reaches %d pages",
                self._path,
                error,
                BACKSTOP_PAGES,
            )
        self._failing = True
