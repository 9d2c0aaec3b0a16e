"""Run calls on a few threads and stop promptly on the first error or Ctrl-C (queued calls are not started;
calls already in flight finish, so nothing is left half-sent).

Every thread is started before any takes a call. A thread started while the others already work (say, building
request bodies) waits for Python's lock each time it starts: up to 15 ms a thread on a busy machine, which was
a third of a 1,000-task apply. ``concurrent.futures.ThreadPoolExecutor`` starts a thread per call submitted,
while the calls before it run, so the pools here are :class:`StartedThreads`.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import CancelledError, Executor, Future, wait
from contextlib import AbstractContextManager, contextmanager
from queue import Empty, SimpleQueue
from typing import Any, TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(
    function: Callable[[T], R], items: Iterable[T], threads: int, stop: threading.Event | None = None
) -> list[R]:
    """``[function(item) for item in items]`` on ``threads`` threads, results in order; the error of the
    earliest item that failed is raised. ``stop`` is set at the first error or a Ctrl-C, after which no call
    starts: a call that waits (on a :class:`Gate`) watches it to give up."""
    work = list(items)
    results: dict[int, R] = {}
    errors: dict[int, BaseException] = {}
    taken = iter(range(len(work)))
    take = threading.Lock()
    go = threading.Event()
    stop = stop if stop is not None else threading.Event()

    def worker() -> None:
        go.wait()
        while not stop.is_set():
            with take:
                index = next(taken, None)
            if index is None:
                return
            try:
                results[index] = function(work[index])
            except BaseException as error:  # handed to the caller, which raises it
                errors[index] = error
                stop.set()
                return

    workers = [
        threading.Thread(target=worker, name=f"batchrun-call-{n}")  # not daemons: calls in flight finish
        for n in range(min(threads, len(work)))
    ]
    try:
        for thread in workers:
            thread.start()
        go.set()
        for thread in workers:
            thread.join()
    except BaseException:  # Ctrl-C: no new call starts, the calls in flight finish
        stop.set()
        go.set()
        for thread in workers:
            if thread.is_alive():
                thread.join()
        raise
    if errors:
        raise errors[min(errors)]
    return [results[index] for index in range(len(work))]


class Gate:
    """Shut until :meth:`open` or :meth:`close`: work made ready beforehand waits on it for work it depends on
    (a job's first tasks, their request made ready while the job is created, for the job)."""

    # How often a waiting call looks at its ``stopped`` event (a Ctrl-C); an opened gate lets it on at once.
    POLL_SECONDS = 0.01

    def __init__(self) -> None:
        self._decided = threading.Event()
        self._opened = False

    def open(self) -> None:
        self._opened = True
        self._decided.set()

    def close(self) -> None:
        self._decided.set()

    def wait(self, stopped: threading.Event) -> None:
        """Return once the gate is open; raise ``CancelledError`` when it was closed or ``stopped`` is set
        before it opens."""
        while not self._decided.wait(self.POLL_SECONDS):
            if stopped.is_set():
                raise CancelledError("stopped before the work it waited for was done")
        if not self._opened:
            raise CancelledError("the work it waited for failed")


_Call = tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]


class StartedThreads(Executor):
    """An executor whose threads are all started when it is made, before any call is submitted (see the
    module's docstring); calls run in the order submitted. Not daemons: calls in flight finish."""

    def __init__(self, threads: int, name: str) -> None:
        self._calls: SimpleQueue[_Call | None] = SimpleQueue()
        self._closed = False  # no more calls are taken
        self._stopped = False  # each thread has a stop queued
        self._lock = threading.Lock()
        self._submitted: list[Future[Any]] = []
        self._threads = [
            threading.Thread(target=self._work, name=f"{name}_{n}") for n in range(max(1, threads))
        ]
        for thread in self._threads:
            thread.start()

    def _work(self) -> None:
        while (call := self._calls.get()) is not None:
            self._run(*call)
            del call  # an idle thread keeps nothing of the call before

    @staticmethod
    def _run(future: Future[Any], function: Callable[..., Any], args: Any, kwargs: Any) -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            result = function(*args, **kwargs)
        except BaseException as error:  # handed to whoever waits on the future
            future.set_exception(error)
        else:
            future.set_result(result)

    def submit(self, fn: Callable[..., R], /, *args: Any, **kwargs: Any) -> Future[R]:
        future: Future[R] = Future()
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot submit a call after shutdown")
            self._calls.put((future, fn, args, kwargs))
            self._submitted.append(future)
        return future

    def finish(self) -> None:
        """Take no more calls and wait for every call submitted, not for the threads to end: each takes its
        stop after its last call and returns (joining a dozen idle threads cost up to 7 ms at the end of a
        plan, while the interpreter lock was busy). The threads are told to stop once the calls are done,
        or on a Ctrl-C while waiting, so none is left waiting for work: told before, a dozen threads woke
        to end while the last calls' answers were still being taken up."""
        with self._lock:
            self._closed = True
            submitted, self._submitted = self._submitted, []  # the pool keeps no result once finished
        try:
            wait(submitted)
        finally:
            self._stop_threads()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._closed = True
            try:
                # The calls not started are dropped (a thread may take one first); no stop is queued yet.
                while cancel_futures and not self._stopped:
                    call = self._calls.get_nowait()
                    if call is not None:
                        call[0].cancel()
            except Empty:
                pass
        self._stop_threads()
        if wait:
            for thread in self._threads:
                if thread is not threading.current_thread():
                    thread.join()

    def _stop_threads(self) -> None:
        """Queue one stop per thread, once: each thread ends when it takes its stop."""
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
            for _ in self._threads:
                self._calls.put(None)


@contextmanager
def calls_at_once(threads: int, name: str) -> Iterator[Executor]:
    """A pool for independent calls made at the same time (a plan's reads), its threads started at once.
    On an error or Ctrl-C in the block, the calls not started are dropped and the error is raised at once,
    not after the slowest call; calls in flight finish on their own. Otherwise the block's end waits for
    every call (not for the idle threads to end: :meth:`StartedThreads.finish`)."""
    pool = StartedThreads(threads, name)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.finish()


class _SwitchInterval:
    """How often Python hands its lock to a waiting thread is the process's setting, so the blocks that ask
    for a shorter one (on any thread, overlapping in any order) are counted here: the shortest asked is in
    force while any block runs, and the setting found before the first is put back after the last."""

    def __init__(self) -> None:
        self._guard = threading.Lock()
        self._asked: list[float] = []
        self._before = 0.0

    @contextmanager
    def at_most(self, seconds: float) -> Iterator[None]:
        with self._guard:
            if not self._asked:
                self._before = sys.getswitchinterval()
            self._asked.append(seconds)
            sys.setswitchinterval(min([self._before, *self._asked]))
        try:
            yield
        finally:
            with self._guard:
                self._asked.remove(seconds)
                sys.setswitchinterval(min([self._before, *self._asked]))


_SWITCH_INTERVAL = _SwitchInterval()  # mirrors the interpreter's one setting, so one per process


def prompt_thread_switches(seconds: float = 0.001) -> AbstractContextManager[None]:
    """Python hands its lock to a waiting thread every ``seconds`` in the block (5 ms otherwise), then as
    before.

    A response body is read 10 KB at a time, each read letting go of the lock and waiting to take it back:
    while another thread decides tasks, a 1 MB page of tasks waited up to 5 ms for it again and again, and a
    10,000-task plan took 4-6 % longer. Blocks may overlap on several threads and end in any order: the
    shortest interval asked is in force while any runs, and the last to end puts back what the first found.
    """
    return _SWITCH_INTERVAL.at_most(seconds)
