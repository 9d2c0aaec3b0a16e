"""Run calls on a few threads and stop promptly on the first error or Ctrl-C (queued calls are not started;
calls already in flight finish, so nothing is left half-sent).

Every thread is started before any takes a call. A thread started while the others already work (say, building
request bodies) waits for Python's lock each time it starts: up to 15 ms a thread on a busy machine, which was
a third of a 1,000-task apply.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(function: Callable[[T], R], items: Iterable[T], threads: int) -> list[R]:
    """``[function(item) for item in items]`` on ``threads`` threads, results in order; the error of the
    earliest item that failed is raised."""
    work = list(items)
    results: dict[int, R] = {}
    errors: dict[int, BaseException] = {}
    taken = iter(range(len(work)))
    take = threading.Lock()
    go = threading.Event()
    stop = threading.Event()

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


@contextmanager
def calls_at_once(threads: int, name: str) -> Iterator[ThreadPoolExecutor]:
    """A pool for independent calls made at the same time (a plan's reads). On an error or Ctrl-C in the
    block, the calls not started are dropped and the error is raised at once, not after the slowest call;
    calls in flight finish on their own. Otherwise the block's end waits for every call."""
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=name)
    try:
        yield pool
    except BaseException:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


@contextmanager
def prompt_thread_switches(seconds: float = 0.001) -> Iterator[None]:
    """Python hands its lock to a waiting thread every ``seconds`` in the block (5 ms otherwise), then as
    before.

    A response body is read 10 KB at a time, each read letting go of the lock and waiting to take it back:
    while another thread decides tasks, a 1 MB page of tasks waited up to 5 ms for it again and again, and a
    10,000-task plan took 4-6 % longer. The setting is the process's: a block that ends puts back what it
    found unless the setting has changed since it began (another block's end put back its own), so blocks that
    overlap on several threads may end it early, which costs time, and always leave it as it was."""
    before = sys.getswitchinterval()
    ours = min(seconds, before)
    sys.setswitchinterval(ours)
    try:
        yield
    finally:
        if sys.getswitchinterval() == ours:
            sys.setswitchinterval(before)
