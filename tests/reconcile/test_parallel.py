"""batchrun.azure.parallel: results in order, the earliest failure raised, nothing new started after one."""

from __future__ import annotations

import threading
import time

import pytest

from batchrun.azure.parallel import StartedThreads, calls_at_once, run_parallel


def test_results_keep_the_order_of_the_items() -> None:
    def slow_for_small(n: int) -> int:
        time.sleep(0.01 * (5 - n % 5))
        return n * n

    assert run_parallel(slow_for_small, range(23), 4) == [n * n for n in range(23)]
    assert run_parallel(slow_for_small, [], 4) == []


def test_every_thread_runs_calls_at_the_same_time() -> None:
    barrier = threading.Barrier(4, timeout=10)

    def meet(n: int) -> int:
        barrier.wait()  # would time out if fewer than 4 calls ran at once
        return n

    assert run_parallel(meet, range(8), 4) == list(range(8))


def test_the_first_failure_is_raised_and_no_new_call_starts() -> None:
    started: list[int] = []
    lock = threading.Lock()

    def call(n: int) -> int:
        with lock:
            started.append(n)
        if n == 3:
            raise ValueError("item 3 failed")
        time.sleep(0.05)
        return n

    with pytest.raises(ValueError, match="item 3 failed"):
        run_parallel(call, range(100), 2)
    assert len(started) < 10, started  # the queued calls were not started


def test_started_threads_are_all_running_before_the_first_call() -> None:
    before = threading.active_count()
    pool = StartedThreads(5, "test-started")
    try:
        assert threading.active_count() == before + 5  # started when made, not one per call submitted
        assert [f.result(timeout=10) for f in [pool.submit(pow, n, 2) for n in range(7)]] == [
            n * n for n in range(7)
        ]
    finally:
        pool.shutdown()
    assert threading.active_count() == before


def test_started_threads_hand_errors_to_the_future_and_drop_queued_calls_when_cancelled() -> None:
    gate = threading.Event()
    pool = StartedThreads(1, "test-cancel")
    busy = pool.submit(gate.wait, 10)
    queued = pool.submit(lambda: 1)
    deadline = time.monotonic() + 10
    while not busy.running():  # taken by the pool's one thread (on a busy machine, not at once)
        assert time.monotonic() < deadline
        time.sleep(0.001)
    failing = StartedThreads(1, "test-fail")
    try:
        with pytest.raises(ZeroDivisionError):
            failing.submit(lambda: 1 / 0).result(timeout=10)
    finally:
        failing.shutdown()
    pool.shutdown(wait=False, cancel_futures=True)
    assert queued.cancelled()
    gate.set()
    assert busy.result(timeout=10) is True
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: 1)


def test_calls_at_once_ends_after_every_call_and_its_threads_end_by_themselves() -> None:
    gate = threading.Event()
    finished: list[int] = []

    def slow(n: int) -> None:
        gate.wait(10)
        time.sleep(0.02)
        finished.append(n)

    before = set(threading.enumerate())
    with calls_at_once(3, "test-finish") as pool:
        for n in range(5):
            pool.submit(slow, n)  # nobody waits on these futures inside the block
        gate.set()
    assert sorted(finished) == list(range(5))  # the block's end waited for every call
    started = [t for t in threading.enumerate() if t not in before and t.name.startswith("test-finish")]
    for thread in started:  # not joined by the block, but told to stop: each ends on its own
        thread.join(timeout=10)
        assert not thread.is_alive()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: 1)


def test_a_ctrl_c_while_a_pool_finishes_leaves_no_thread_waiting_for_work(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import batchrun.azure.parallel as parallel

    def interrupted(*_args: object, **_kwargs: object) -> None:
        raise KeyboardInterrupt

    gate = threading.Event()
    pool = StartedThreads(3, "test-interrupted")
    busy = pool.submit(gate.wait, 10)
    monkeypatch.setattr(parallel, "wait", interrupted)  # Ctrl-C while the block's end waits for its calls
    with pytest.raises(KeyboardInterrupt):
        pool.finish()
    gate.set()
    assert busy.result(timeout=10) is True
    for thread in pool._threads:  # each was told to stop on the Ctrl-C: none is left blocked on the queue
        thread.join(timeout=10)
        assert not thread.is_alive()


def test_idle_threads_are_told_to_stop_only_once_the_calls_are_done() -> None:
    gate = threading.Event()
    pool = StartedThreads(3, "test-idle")
    busy = pool.submit(gate.wait, 10)
    finishing = threading.Thread(target=pool.finish)
    finishing.start()
    time.sleep(0.1)
    # The last call still runs: its idle neighbours are not woken to end meanwhile.
    assert all(thread.is_alive() for thread in pool._threads) and finishing.is_alive()
    with pytest.raises(RuntimeError, match="after shutdown"):
        pool.submit(lambda: 1)  # no new call is taken while finishing
    gate.set()
    finishing.join(timeout=10)
    assert busy.result(timeout=10) is True
    for thread in pool._threads:
        thread.join(timeout=10)
        assert not thread.is_alive()
