"""Run calls on a thread pool and stop promptly on the first error or Ctrl-C (queued calls are cancelled;
calls already in flight finish, so nothing is left half-sent)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def run_parallel(function: Callable[[T], R], items: Iterable[T], threads: int) -> list[R]:
    """``[function(item) for item in items]`` on ``threads`` threads, results in order."""
    pool = ThreadPoolExecutor(max_workers=threads)
    try:
        futures = [pool.submit(function, item) for item in items]
        results = [future.result() for future in futures]
    except BaseException:
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return results
