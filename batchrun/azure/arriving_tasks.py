"""A job's live tasks as their listing brings them, page by page.

The plan looks tasks up in the manifest's order while later pages are still on their way: a lookup of a task
not listed yet waits for the next page (or for the end of the listing, when it is not there at all), so the
plan's decisions are made while the service makes the next pages instead of after the last one. The local
target lists a job's tasks in id order, the order of most manifests (Batch documents no order); in any other
order a lookup just waits longer, never past the end of the listing. When no task of the job waits for
another, the plan takes each task out as it decides it (:meth:`ArrivingTasks.take`): what is held is the
pages not decided yet, not the whole job.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Mapping

from batchrun.plan.live import LiveTask, TakenOnce


class ListingStopped(RuntimeError):
    """Read after the listing was stopped before its last page (a plan reads its live state only while the
    state is being read): what it holds is not all of the job's tasks."""


class ArrivingTasks(TakenOnce):
    """Tasks by lower-cased id, filled by one listing thread (:meth:`arrived`, then :meth:`finish`) and read
    by others: a read that needs the listing's end (a missing key, ``len``, iteration) waits for it and
    raises the listing's error, if it failed. A task taken (:meth:`take`) is no longer held."""

    def __init__(self) -> None:
        self._tasks: dict[str, LiveTask] = {}
        self._done = False
        self._error: BaseException | None = None
        self._changed = threading.Condition()

    def arrived(self, tasks: Mapping[str, LiveTask]) -> None:
        with self._changed:
            self._tasks.update(tasks)
            self._changed.notify_all()

    def finish(self, error: BaseException | None = None) -> None:
        """The listing ended: with ``error`` when it failed or was stopped early."""
        with self._changed:
            self._error = error
            self._done = True
            self._changed.notify_all()

    def get(self, key: str, default: LiveTask | None = None) -> LiveTask | None:  # type: ignore[override]
        found = self._tasks.get(key)  # the common case: listed already, no lock taken
        if found is not None:
            return found
        return self._wait_for(key) or default

    def take(self, key: str) -> LiveTask | None:
        # One listing thread adds whole pages under the lock; a dict's pop and update are each atomic.
        found = self._tasks.pop(key, None)
        if found is not None:
            return found
        if self._wait_for(key) is None:
            return None
        return self._tasks.pop(key, None)

    def _wait_for(self, key: str) -> LiveTask | None:
        tasks = self._tasks
        with self._changed:
            while key not in tasks and not self._done:
                self._changed.wait()
        if key not in tasks:
            self._raise_error()
        return tasks.get(key)

    def _all(self) -> dict[str, LiveTask]:
        with self._changed:
            while not self._done:
                self._changed.wait()
        self._raise_error()
        return self._tasks

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def __getitem__(self, key: str) -> LiveTask:
        found = self.get(key)
        if found is None:
            raise KeyError(key)
        return found

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str) and self.get(key) is not None

    def __iter__(self) -> Iterator[str]:
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())
