"""Leaving the process once a command is done, without the interpreter's teardown.

At its normal exit, Python frees the objects of every module one by one and collects garbage a last time:
10 ms of a plan of a tiny manifest (2.5 % of it), for memory the operating system takes back at once anyway.
A finished command instead does what matters of that exit itself: it waits for its threads, runs the exit
handlers (``atexit``; logging flushes its handlers there), flushes stdout and stderr, and ends the process
with its exit code (``os._exit``). Every file batchrun writes is closed by then: each is written in a
``with`` block.

The interpreter's own exit is kept whenever it would do more: a thread that is not a daemon still runs
after a moment's grace (a call in flight after Ctrl-C, say: Python waits for it), the exit carries a
message instead of a code, the output cannot be flushed (a closed pipe: Python reports it as always), or a
profiler, debugger or coverage tool watches the process (``python -m cProfile`` writes its figures after
the command returns).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading
import time

THREAD_GRACE_SECONDS = 0.05  # a pool's thread that has taken its stop returns within microseconds


def _threads_done() -> bool:
    """Every thread that is not a daemon has ended (each is given a moment's grace)."""
    deadline = time.monotonic() + THREAD_GRACE_SECONDS
    main = threading.main_thread()
    for thread in threading.enumerate():
        if thread is not main and not thread.daemon:
            thread.join(timeout=max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                return False
    return True


def exit_now(code: object) -> None:
    """End the process with ``code`` (a ``SystemExit`` code: None or a number) at once, or return when
    the interpreter's own exit is needed (see the module's docstring)."""
    if code is not None and not isinstance(code, int):
        return
    if sys.getprofile() is not None or sys.gettrace() is not None:
        return
    if threading.current_thread() is not threading.main_thread() or not _threads_done():
        return
    atexit._run_exitfuncs()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code or 0)
