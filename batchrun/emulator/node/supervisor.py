"""One thread that waits for every task process, instead of a thread blocked in ``wait()`` per running task.

Each watched process is a pidfd (Linux 5.3+) in one ``epoll``: the thread wakes when a process ends, reaps it
and reports its :class:`ProcessResult` to the ``on_exit`` given with it. Time limits and cancellation are
handled there as :func:`~batchrun.emulator.node.process.wait_process` does for one process: SIGTERM to the
process group, SIGKILL to the group after :data:`TERMINATE_GRACE` seconds or as soon as the process has ended.
A run's cancel flag is looked at every :data:`CHECK_INTERVAL` seconds while processes run (as the per-process
loop does) or at once after :meth:`wake`. A process that ends is finished at the wake that reports it, without
a pass over every other watched process (that pass runs at those moments only).

Any thread may hand a process over with :meth:`watch` (its pidfd goes into the epoll; the supervisor's thread
is not woken for it) or queue work for the thread with :meth:`call_soon`. After each wake the thread calls
``flush`` once, after the ``on_exit`` callbacks of that wake: the owner records the runs that ended together
in one go (one lock acquisition, one database transaction), and says how soon it must be called again, if at
all (the thread wakes by then even when nothing else happens).

Or any thread may have a process started by the spawn server (:mod:`.spawn_server`) with :meth:`spawn`: the
request goes straight to the server's socket, which is in the same epoll; the server answers with the pid (or
why nothing started, reported to ``on_failure``) and later with the exit status, several at a time, so such
processes need no pidfd, no ``Popen`` and no ``waitpid`` here. The server is started by this thread (its
parent-death signal follows the thread that starts it) on the first :meth:`spawns`. If it ends, the processes
it ran are reported killed (SIGKILL: they die with it) and later starts go through ``subprocess``.
"""

from __future__ import annotations

import contextlib
import logging
import os
import select
import signal
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import TypeVar

from batchrun.emulator.node.model import Cancellation
from batchrun.emulator.node.process import (
    TERMINATE_GRACE,
    ProcessResult,
    exit_code,
    open_pidfd,
    signal_group,
)
from batchrun.emulator.node.spawn_server import (
    EXITED,
    FAILED,
    GONE,
    STARTED,
    SpawnedProcess,
    SpawnFailure,
    SpawnRequest,
    SpawnServer,
    server_path,
)
from batchrun.emulator.node.watches import Moments, Watch, next_step

_LOG = logging.getLogger(__name__)
_T = TypeVar("_T")
CHECK_INTERVAL = 0.05


class ProcessSupervisor:
    """Starts on first use; :meth:`stop` ends the thread once nothing is watched or queued."""

    def __init__(
        self, flush: Callable[[], float | None] | None = None, name: str = "batch-processes"
    ) -> None:
        self._flush = flush  # after each wake of the thread; returns how soon it must run again (or None)
        self._flush_at: float | None = None
        self._name = name
        self._lock = threading.Lock()
        self._calls: deque[Callable[[], None]] = deque()
        self._watches: dict[int, Watch] = {}  # by pidfd, or by pid where no pidfd could be opened
        self._spawned: dict[int, Watch] = {}  # processes of the spawn server, by request id
        self._outgoing: list[bytes] = []  # starts asked for on this thread: sent together before it waits
        self._requests = 0
        self._server: SpawnServer | None = None
        self._server_state = "unknown"  # unknown | starting | up | down
        self._server_ready = threading.Event()
        self._moments = Moments()  # deadlines and kill times
        self._next_pass = 0.0  # when every watched process is looked at again (cancel, deadline, kill)
        self._exited: list[int] = []  # request ids the spawn server reported ended since the last check
        self._epoll = select.epoll()
        self._wake_read, self._wake_write = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self._epoll.register(self._wake_read, select.EPOLLIN)
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._closed = False

    # ---- any thread
    def call_soon(self, call: Callable[[], None]) -> None:
        """Run ``call`` in the supervisor's thread (in order of the calls)."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the process supervisor has stopped")
            self._calls.append(call)
            self._ensure_thread()
        if not self.on_thread():  # the thread itself looks at its calls before it waits again
            self.wake()

    def wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"\0")

    def stop(self, timeout: float = 20.0) -> None:
        """End the thread once every watched process has been reported and every queued call has run."""
        with self._lock:
            self._stopping = True
            thread = self._thread
        self.wake()
        if thread is not None:
            thread.join(timeout)
        with self._lock:
            self._closed = True
            if thread is None or not thread.is_alive():
                self._close()

    def watch(
        self,
        process: subprocess.Popen[bytes],
        cancel: Cancellation,
        time_limit: float | None,
        on_exit: Callable[[ProcessResult], None],
    ) -> None:
        """Report the end of ``process`` to ``on_exit``, called on the supervisor's thread.

        From any thread: the pidfd goes into the epoll directly, without waking the thread (unless it sleeps
        without a timeout, or the process has a time limit)."""
        deadline = None if time_limit is None else time.monotonic() + time_limit
        item = Watch(process, cancel, deadline, on_exit, open_pidfd(process.pid))
        with self._lock:
            if self._closed:
                if item.fd is not None:
                    os.close(item.fd)
                raise RuntimeError("the process supervisor has stopped")
            self._watches[-process.pid if item.fd is None else item.fd] = item
            if item.fd is not None:
                self._epoll.register(item.fd, select.EPOLLIN)
            if deadline is not None:
                self._moments.add(deadline)
            wake = len(self._watches) == 1 or deadline is not None
            self._ensure_thread()
        if wake:  # the thread may sleep with no timeout (nothing watched) or past this deadline
            self.wake()

    def spawns(self) -> bool:
        """True when :meth:`spawn` can start processes: the spawn server is (built and) running.

        The first call builds the server if needed and has this supervisor's thread start it (waiting for
        that unless called on that thread)."""
        state = self._server_state
        if state in ("up", "down"):  # asked at every task start: settled, it needs no lock
            return state == "up"
        with self._lock:
            state = self._server_state
            if state == "unknown":
                if self._closed:
                    return False
                self._server_state = "starting"
        if state == "unknown":
            path = server_path()
            if path is None:
                self._server_started(None)
            elif self.on_thread():
                self._start_server(path)
            else:
                try:
                    self.call_soon(lambda: self._start_server(path))
                except RuntimeError:
                    self._server_started(None)
        elif state == "starting" and self.on_thread():
            return False  # another thread builds it; its start is queued behind this call
        self._server_ready.wait()
        return self._server_state == "up"

    def serving(self) -> bool:
        """True when the spawn server runs (without starting or waiting for it)."""
        return self._server_state == "up"

    def on_thread(self) -> bool:
        """True on the supervisor's own thread (where ``on_exit``, ``flush`` and queued calls run)."""
        return self._thread is not None and self._thread.ident == threading.get_ident()

    def spawn(
        self,
        request: SpawnRequest,
        cancel: Cancellation,
        time_limit: float | None,
        on_exit: Callable[[ProcessResult], None],
        on_failure: Callable[[SpawnFailure], None],
    ) -> bool:
        """Have the spawn server start ``request``; False (nothing done) when there is no server running.

        ``on_exit`` as for :meth:`watch`, or ``on_failure`` when nothing started; both on this supervisor's
        thread. From any thread; the thread is not woken (unless the process has a time limit). On the
        supervisor's own thread the request is sent with the others made there, before the thread waits."""
        deadline = None if time_limit is None else time.monotonic() + time_limit
        item = Watch(SpawnedProcess(), cancel, deadline, on_exit, on_failure=on_failure)
        with self._lock:
            server = self._server
            if server is None or self._closed:
                return False
            self._requests += 1
            ident = self._requests
            self._spawned[ident] = item
            if deadline is not None:
                self._moments.add(deadline)
        frame = request.frame(ident)
        if self.on_thread():
            self._outgoing.append(frame)
            return True
        # An error: the server has ended; the thread reports its end, this run included.
        with contextlib.suppress(OSError):
            server.send(frame)
        if deadline is not None:
            self.wake()
        return True

    def _server_started(self, server: SpawnServer | None) -> None:
        with self._lock:
            self._server = server
            self._server_state = "up" if server is not None else "down"
        self._server_ready.set()

    def _ensure_thread(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name=self._name, daemon=True)
            self._thread.start()

    # ---- the supervisor's thread
    def _loop(self) -> None:
        while True:
            with self._lock:
                calls = list(self._calls)
                self._calls.clear()
                if not calls and not self._watches and not self._spawned and self._stopping:
                    self._thread = None
                    self._closed = True
                    self._close()
                    return
            for call in calls:
                self._run(call)
            self._send_outgoing()
            ready, woken = self._poll(0.0 if calls else self._timeout())
            self._check(ready, woken)
            if self._flush is not None:
                self._flushed(self._flush)

    def _start_server(self, path: str) -> None:
        try:
            server: SpawnServer | None = SpawnServer.start(path)
        except OSError as error:
            _LOG.warning("the spawn server could not be started (%s); tasks start through subprocess", error)
            server = None
        if server is not None:
            self._epoll.register(server.fileno(), select.EPOLLIN)
        self._server_started(server)

    def _send_outgoing(self) -> None:
        """Send the starts asked for on this thread, in one write. Without a server they are dropped: its end
        was (or is about to be) reported for every run it had been asked to start."""
        if not self._outgoing:
            return
        frames, self._outgoing = self._outgoing, []
        server = self._server
        if server is not None:
            with contextlib.suppress(OSError):
                server.send(b"".join(frames))

    def _server_records(self) -> None:
        """Read what the spawn server reported; once it has ended, report what it ran as killed."""
        server = self._server
        if server is None:
            return
        records = server.receive()
        with self._lock:
            if records is None:
                _LOG.error("the spawn server ended; its task processes died with it")
                self._server = None
                self._server_state = "down"
                with contextlib.suppress(OSError, ValueError):
                    self._epoll.unregister(server.fileno())
                records = [
                    (FAILED, ident, GONE, 0) if not item.process.pid else (EXITED, ident, signal.SIGKILL, 0)
                    for ident, item in self._spawned.items()
                ]
            else:
                server = None
            failures: list[tuple[Watch, SpawnFailure]] = []
            for kind, ident, first, second in records:
                item = self._spawned.get(ident)
                if item is None:
                    continue
                process = item.process
                assert isinstance(process, SpawnedProcess)
                if kind == STARTED:
                    process.pid = first
                elif kind == EXITED:
                    process.returncode = os.waitstatus_to_exitcode(first)
                    self._exited.append(ident)
                else:
                    del self._spawned[ident]
                    failures.append((item, SpawnFailure(first, second)))
        if server is not None:
            server.close()
        for item, failure in failures:
            report = item.on_failure
            assert report is not None
            self._run(lambda report=report, failure=failure: report(failure))  # type: ignore[misc]

    def _flushed(self, flush: Callable[[], float | None]) -> None:
        again = self._run(flush)
        self._flush_at = None if again is None else time.monotonic() + again

    def _timeout(self) -> float | None:
        wait: float | None = None
        with self._lock:
            if self._watches or self._spawned:
                now = time.monotonic()
                wait = max(0.0, min(self._next_pass, now + CHECK_INTERVAL) - now)
                first = self._moments.first()
                if first is not None:
                    wait = min(wait, max(0.0, first - now))
        if self._flush_at is not None:
            due = max(0.0, self._flush_at - time.monotonic())
            wait = due if wait is None else min(wait, due)
        return wait

    def _poll(self, timeout: float | None) -> tuple[set[int], bool]:
        """The pidfds that became readable, and whether :meth:`wake` was called."""
        try:
            events = self._epoll.poll(-1 if timeout is None else timeout)
        except InterruptedError:
            return set(), True
        ready: set[int] = set()
        woken = False
        server = self._server
        for fd, _ in events:
            if server is not None and fd == server.fileno():
                self._server_records()
            elif fd == self._wake_read:
                woken = True
                with contextlib.suppress(BlockingIOError, OSError):
                    while os.read(self._wake_read, 4096):
                        pass
            else:
                ready.add(fd)
        return ready, woken

    def _check(self, ready: set[int], woken: bool) -> None:
        """Finish the processes that ended; look at every watched one (cancel, deadline, kill) when a timer
        is due, after :meth:`wake`, or :data:`CHECK_INTERVAL` after the last look."""
        now = time.monotonic()
        with self._lock:
            exited, self._exited = self._exited, []
            ended = [(-ident, item) for ident in exited if (item := self._spawned.get(ident)) is not None]
            ended += [(fd, item) for fd in ready if (item := self._watches.get(fd)) is not None]
            due = self._moments.pass_due(now)  # a deadline or kill time: the pass below acts on it
        for key, item in ended:
            if item.process.poll() is not None:
                self._finish(key, item)
        if not (due or woken or now >= self._next_pass):
            return
        self._next_pass = now + CHECK_INTERVAL
        with self._lock:
            watched = list(self._watches.items())
            spawned = [(-ident, item) for ident, item in self._spawned.items() if item.process.pid]
        for key, item in [*watched, *spawned]:
            if key < 0 and isinstance(item.process, SpawnedProcess):  # the spawn server's: reaped there
                reaped = item.process.returncode is not None
            else:
                maybe_ended = key in ready or item.fd is None or item.reason is not None
                reaped = (maybe_ended or item.cancel.is_set()) and item.process.poll() is not None
            step = next_step(item, reaped, now)
            if step == "finish":
                self._finish(key, item)
            elif step == "kill":
                item.kill_at = None
                signal_group(item.process.pid, signal.SIGKILL)
            elif step is not None:
                self._end(item, step, now)

    def _end(self, item: Watch, reason: str, now: float) -> None:
        item.reason = reason
        signal_group(item.process.pid, signal.SIGTERM)
        item.kill_at = now + TERMINATE_GRACE
        with self._lock:
            self._moments.add(item.kill_at)

    def _finish(self, key: int, item: Watch) -> None:
        with self._lock:
            if isinstance(item.process, SpawnedProcess):
                del self._spawned[-key]
            else:
                del self._watches[key]
            if item.fd is not None:
                with contextlib.suppress(OSError):
                    self._epoll.unregister(item.fd)
                os.close(item.fd)
        if item.reason is not None:
            signal_group(item.process.pid, signal.SIGKILL)  # also ends children that ignored SIGTERM
        returncode = item.process.returncode
        assert returncode is not None
        reason = "exited" if item.reason is None else item.reason
        self._run(lambda: item.on_exit(ProcessResult(exit_code(returncode), reason)))  # type: ignore[arg-type]

    def _run(self, call: Callable[[], _T]) -> _T | None:
        """``call()``'s answer; None when it failed (logged)."""
        try:
            return call()
        except Exception:  # a bug in one callback must not stop the waiting for every other process
            _LOG.exception("a task process callback failed")
            return None

    def _close(self) -> None:
        server, self._server = self._server, None
        if self._server_state != "down":
            self._server_state = "down"
            self._server_ready.set()
        if server is not None:
            server.close()
        for item in self._watches.values():
            if item.fd is not None:
                with contextlib.suppress(OSError):
                    os.close(item.fd)
        self._watches.clear()
        with contextlib.suppress(OSError):
            self._epoll.close()
        for fd in (self._wake_read, self._wake_write):
            with contextlib.suppress(OSError):
                os.close(fd)
