"""Progress events of an apply: the CLI prints them, the Python API lets callers observe them."""

from __future__ import annotations

from typing import Protocol


class ApplyHooks(Protocol):
    def step_started(self, address: str, operation: str) -> None: ...

    def step_finished(self, address: str, operation: str) -> None: ...

    def tasks_progress(self, job_id: str, verb: str, done: int, total: int) -> None: ...


class SilentHooks:
    """Hooks that report nothing."""

    def step_started(self, address: str, operation: str) -> None:
        return None

    def step_finished(self, address: str, operation: str) -> None:
        return None

    def tasks_progress(self, job_id: str, verb: str, done: int, total: int) -> None:
        return None
