"""One thread reaps every task process: exit codes, cancellation and time limits end the whole process group,
ends reported together are followed by one flush, and stopping waits for what is still watched."""

from __future__ import annotations

import os
import queue
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

from batchrun.emulator.node.process import ProcessResult, spawn_process
from batchrun.emulator.node.supervisor import ProcessSupervisor
from tests.node.processes import written

ENV = {"PATH": "/usr/bin:/bin"}


class Recorder:
    """Results in the order reported, and how many were reported before each flush."""

    def __init__(self) -> None:
        self.results: queue.Queue[tuple[str, ProcessResult]] = queue.Queue()
        self.flushed: list[int] = []
        self._count = 0
        self.threads: set[str] = set()

    def on_exit(self, name: str) -> Callable[[ProcessResult], None]:
        def report(result: ProcessResult) -> None:
            self._count += 1
            self.threads.add(threading.current_thread().name)
            self.results.put((name, result))

        return report

    def flush(self) -> None:
        if self._count:
            self.flushed.append(self._count)
            self._count = 0

    def next(self) -> tuple[str, ProcessResult]:
        return self.results.get(timeout=60)


def _start(
    supervisor: ProcessSupervisor,
    recorder: Recorder,
    folder: Path,
    name: str,
    command: str,
    cancel: threading.Event | None = None,
    limit: float | None = None,
    from_its_thread: bool = False,
) -> None:
    """Spawn ``command`` and hand it to the supervisor: from this thread, or from a call on its own."""
    process = spawn_process(command, folder, ENV, folder / f"{name}.out", folder / f"{name}.err")
    event = cancel or threading.Event()
    if from_its_thread:
        supervisor.call_soon(lambda: supervisor.watch(process, event, limit, recorder.on_exit(name)))
    else:
        supervisor.watch(process, event, limit, recorder.on_exit(name))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_exit_codes_are_reported_on_the_supervisor_thread_and_followed_by_a_flush(tmp_path: Path) -> None:
    recorder = Recorder()
    supervisor = ProcessSupervisor(flush=recorder.flush, name="test-supervisor")
    try:
        for code in (0, 3, 7):
            command = f"/bin/sh -c 'exit {code}'"
            _start(supervisor, recorder, tmp_path, f"exit{code}", command, from_its_thread=code == 3)
        results = dict(recorder.next() for _ in range(3))
    finally:
        supervisor.stop()
    assert results == {
        "exit0": ProcessResult(0, "exited"),
        "exit3": ProcessResult(3, "exited"),
        "exit7": ProcessResult(7, "exited"),
    }
    assert recorder.threads == {"test-supervisor"}
    assert sum(recorder.flushed) == 3  # every report was followed by a flush


def test_a_cancelled_process_group_is_ended_with_its_children(tmp_path: Path) -> None:
    recorder = Recorder()
    supervisor = ProcessSupervisor(flush=recorder.flush)
    cancel = threading.Event()
    try:
        # The shell starts a child that outlives it unless the whole group is ended.
        _start(
            supervisor, recorder, tmp_path, "group", "/bin/sh -c 'sleep 300 & echo $! > child; wait'", cancel
        )
        child = int(written(tmp_path / "child", "the child never wrote its pid"))
        assert _alive(child)
        cancel.set()
        supervisor.wake()
        name, result = recorder.next()
    finally:
        supervisor.stop()
    assert name == "group" and result == ProcessResult(128 + signal.SIGTERM, "cancelled")
    deadline = time.monotonic() + 30
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert not _alive(child)


def test_a_process_over_its_time_limit_is_ended_as_a_timeout(tmp_path: Path) -> None:
    recorder = Recorder()
    supervisor = ProcessSupervisor(flush=recorder.flush)
    try:
        _start(supervisor, recorder, tmp_path, "slow", "sleep 300", limit=0.2)
        _start(supervisor, recorder, tmp_path, "quick", "/bin/true", limit=300)
        results = dict(recorder.next() for _ in range(2))
    finally:
        supervisor.stop()
    assert results == {
        "slow": ProcessResult(128 + signal.SIGTERM, "timeout"),
        "quick": ProcessResult(0, "exited"),
    }


def test_a_process_that_ignores_sigterm_is_killed_after_the_grace_period(tmp_path: Path) -> None:
    recorder = Recorder()
    supervisor = ProcessSupervisor(flush=recorder.flush)
    cancel = threading.Event()
    try:
        _start(
            supervisor,
            recorder,
            tmp_path,
            "stubborn",
            "/bin/sh -c 'trap \"\" TERM; echo ready > ready; while :; do sleep 0.05; done'",
            cancel,
        )
        written(tmp_path / "ready", "the task never wrote ready")
        cancel.set()
        name, result = recorder.next()
    finally:
        supervisor.stop()
    assert name == "stubborn" and result == ProcessResult(128 + signal.SIGKILL, "cancelled")


def test_stopping_waits_until_every_watched_process_is_reported(tmp_path: Path) -> None:
    recorder = Recorder()
    supervisor = ProcessSupervisor(flush=recorder.flush)
    _start(supervisor, recorder, tmp_path, "last", "/bin/sh -c 'sleep 0.3; exit 4'")
    supervisor.stop()
    assert recorder.next() == ("last", ProcessResult(4, "exited"))
    try:
        supervisor.call_soon(lambda: None)
    except RuntimeError:
        pass
    else:
        raise AssertionError("a stopped supervisor took more work")


def test_a_flush_that_asks_to_run_again_soon_is_run_then_with_nothing_else_happening() -> None:
    calls: list[float] = []
    due: list[float] = []  # when the flush wants to run again
    fired: list[float] = []

    def flush() -> float | None:
        now = time.monotonic()
        calls.append(now)
        if len(calls) == 2:
            due.append(now + 0.05)
        if not due:
            return None
        if now < due[0]:
            return due[0] - now
        fired.append(now - due.pop())
        return None

    supervisor = ProcessSupervisor(flush=flush, name="test-flush-again")
    try:
        supervisor.call_soon(lambda: None)  # starts the thread: one pass, one flush
        deadline = time.monotonic() + 5
        while not calls and time.monotonic() < deadline:
            time.sleep(0.01)
        supervisor.call_soon(lambda: None)  # a second pass, whose flush asks to run again in 50 ms
        while not fired and time.monotonic() < deadline:
            time.sleep(0.01)
        assert fired, "the flush was not run again: the thread slept with nothing watched"
        assert fired[0] < 0.5, f"run again {fired[0]:.3f} s late"
        count = len(calls)
        time.sleep(0.2)
        assert len(calls) == count, "a flush that asks for nothing is not run again"
    finally:
        supervisor.stop()
