"""The journal of recent output uploads: what storage acknowledged, when, and from which file.

A storage service can lose writes it has acknowledged (Azurite saves its blob index every few seconds, so a
crash forgets the blobs written since its last save). Reading a blob back right after its upload cannot see
that loss; it happens later. The node runtime therefore records every acknowledged output upload here, and
after a storage restart the service checks the uploads of the window before the crash again and uploads the
missing ones once more from the task's folder (:mod:`batchrun.emulator.scheduler.storage_recovery`).

Entries are kept for :data:`KEEP_SECONDS`, longer while a recovery holds the journal. Uploads under way are
counted, so a recovery can wait until every upload that began before the restart has been answered (and, if
acknowledged, recorded) before it reads the journal.
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from pathlib import Path

import msgspec

from batchrun.redact import redact, repr_without

KEEP_SECONDS = 120.0


class UploadEntry(msgspec.Struct, frozen=True):
    """One acknowledged output upload. ``container_url`` carries the task's SAS: never shown."""

    acknowledged: float  # time.time() when storage answered the upload
    job_id: str
    task_id: str
    started: datetime  # start of the task run that uploaded it (its executionInfo.startTime)
    task_dir: Path  # the task's folder: fileuploadout.txt / fileuploaderr.txt
    container_url: str
    blob_name: str
    path: Path
    size: int
    md5: bytes
    headers: tuple[tuple[str, str], ...] = ()  # the output's uploadHeaders (name, value)

    def __repr__(self) -> str:
        return repr_without(self, "container_url")

    @property
    def container_base(self) -> str:
        """The container URL without its query (the SAS)."""
        return self.container_url.split("?", 1)[0].rstrip("/")

    def __str__(self) -> str:
        return f"{self.job_id}/{self.task_id}: {self.path} -> {redact(self.container_base)}/{self.blob_name}"


class UploadJournal:
    """Thread-safe; shared by every task run of one emulator process."""

    def __init__(self, keep_seconds: float = KEEP_SECONDS, clock: Callable[[], float] = time.time) -> None:
        self.keep_seconds = keep_seconds
        self.clock = clock
        self._entries: deque[UploadEntry] = deque()
        self._changed = threading.Condition()
        self._in_flight: dict[int, float] = {}  # token -> when the upload began
        self._tokens = 0
        self._holds = 0
        # One recovery at a time: a second storage crash during a recovery waits for the first to finish.
        self.recovery_lock = threading.Lock()

    @contextmanager
    def uploading(self) -> Iterator[None]:
        """Marks one upload (with its read-back and retries) as under way."""
        with self._changed:
            self._tokens += 1
            token = self._tokens
            self._in_flight[token] = self.clock()
        try:
            yield
        finally:
            with self._changed:
                del self._in_flight[token]
                self._changed.notify_all()

    def record(self, entry: UploadEntry) -> None:
        with self._changed:
            self._entries.append(entry)
            if not self._holds:
                oldest = self.clock() - self.keep_seconds
                while self._entries and self._entries[0].acknowledged < oldest:
                    self._entries.popleft()

    @contextmanager
    def held(self) -> Iterator[None]:
        """Nothing is forgotten while held (a recovery between a crash and its restart)."""
        with self._changed:
            self._holds += 1
        try:
            yield
        finally:
            with self._changed:
                self._holds -= 1

    def settle(self, began_before: float, timeout: float) -> bool:
        """Wait until no upload that began before ``began_before`` is under way; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while any(began < began_before for began in self._in_flight.values()):
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._changed.wait(min(left, 1.0))
        return True

    def since(self, moment: float) -> list[UploadEntry]:
        """The entries acknowledged at ``moment`` or later, oldest first."""
        with self._changed:
            return [entry for entry in self._entries if entry.acknowledged >= moment]

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)


class RunRecorder(msgspec.Struct, frozen=True):
    """The journal bound to one task run: what the output upload code calls."""

    journal: UploadJournal
    job_id: str
    task_id: str
    started: datetime
    task_dir: Path

    def uploading(self) -> AbstractContextManager[None]:
        return self.journal.uploading()

    def acknowledged(
        self,
        container_url: str,
        blob_name: str,
        path: Path,
        size: int,
        md5: bytes,
        headers: tuple[tuple[str, str], ...],
    ) -> None:
        self.journal.record(
            UploadEntry(
                acknowledged=self.journal.clock(),
                job_id=self.job_id,
                task_id=self.task_id,
                started=self.started,
                task_dir=self.task_dir,
                container_url=sys.intern(container_url),  # one copy per container, not per output
                blob_name=blob_name,
                path=path,
                size=size,
                md5=md5,
                headers=headers,
            )
        )
