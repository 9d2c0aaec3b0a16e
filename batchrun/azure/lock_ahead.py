"""The apply lock taken while the plan is still being made (:class:`LockAhead`), so that its requests overlap
the plan's instead of following them. The lock itself, a blob lease: :mod:`batchrun.azure.lock`."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from concurrent.futures import Executor, Future, wait
from contextlib import AbstractContextManager, ExitStack, contextmanager, suppress

from azure.storage.blob import BlobServiceClient

from batchrun.azure.lock import HeldLock, LockNotMissing, apply_lock
from batchrun.azure.parallel import prompt_thread_switches

# While the lock is taken ahead, the plan is decided on another thread: Python hands its lock to the lock's
# thread within 0.1 ms of its answers coming back, instead of 1 ms (the plan's reads) or 5 ms.
LOCK_SWITCH_SECONDS = 0.0001


class LockAhead:
    """The apply lock, taken while the plan is still being made, so that its requests overlap the plan's
    instead of following them:

    - beside the plan's reads, when the lock's blob is missing (the workload's first apply, or its first
      after a destroy): it is made naming this apply and leased (:meth:`begin`, on the reads' threads, before
      the reads; a blob that is there is left alone, nothing written);
    - else once the live state shows that the apply will write (:meth:`start`, when
      :func:`batchrun.plan.decide_job.creates_a_job`), while the plan is decided.

    An apply with nothing to do never takes it, so it still writes nothing (a blob made beside the reads is
    removed again); nor does an apply that breaks the lock (``force``): it breaks it only once its plan is to
    be applied. Used as a context manager: a lock taken and not handed to :meth:`held` (a blocked plan, an
    apply declined at the prompt) is released at the block's end (its blob removed when made beside the
    reads), or, when the block ends before the lock is taken (a second Ctrl-C), as soon as it is."""

    def __init__(self, service: BlobServiceClient, workload: str, *, force: bool = False) -> None:
        self._service, self._workload, self._force = service, workload, force
        self._first: Future[None] | None = None  # the take beside the reads, only if the blob is missing
        self._thread: threading.Thread | None = None  # the take once the plan is sure to write
        self._guard = threading.Lock()
        self._lock: AbstractContextManager[HeldLock] | None = None
        self._held: HeldLock | None = None
        self._error: BaseException | None = None
        self._there: bool | None = None  # what the first take found: the blob there, or not made
        self._wanted = False  # the plan is sure to write
        self._first_done = False  # the take beside the reads is over (it takes the lock when wanted by then)
        self._handed = self._abandoned = False

    @property
    def started(self) -> bool:
        """The lock was asked for: its blob was missing and made beside the reads, or the plan was sure to
        write."""
        self._settle_first()
        return self._wanted or self._lock is not None or self._error is not None

    def _settle_first(self) -> None:
        """Wait for the take begun beside the reads (its two requests, long answered by then, mostly)."""
        if self._first is not None:
            wait([self._first])

    def begin(self, pool: Executor) -> None:
        """Take the lock on ``pool`` (the threads of the plan's reads, before the reads) if its blob is
        missing (once; never to break it)."""
        if self._first is None and self._thread is None and not self._force:
            self._first = pool.submit(self._take_first)

    def _take_first(self) -> None:
        self._take(True)
        with self._guard:
            self._first_done = True
            go_on = self._wanted and self._lock is None and self._error is None and not self._abandoned
        if go_on:  # the plan became sure to write meanwhile, and the blob was there: taken the usual way
            self._take(False)

    def start(self) -> None:
        """The plan is sure to write: take the lock on a thread of its own, unless taken beside the reads
        (without waiting for that take: when it finds the blob there, it goes on to take the lock)."""
        if self._force or self._wanted:
            return
        with self._guard:
            self._wanted = True
            if self._first is not None and not self._first_done:
                return
            go = self._lock is None and self._error is None
        if go:
            self._thread = threading.Thread(
                target=self._take, args=(False,), name=f"batchrun-lock-{self._workload}"
            )
            self._thread.start()

    def _take(self, only_if_missing: bool) -> None:
        # Taken the usual way after a blob found there; else most likely a first apply: the blob made first.
        lock = apply_lock(
            self._service,
            self._workload,
            likely_missing=self._there is not True,
            only_if_missing=only_if_missing,
        )
        try:
            if only_if_missing:  # beside the reads: at their switch interval
                held = lock.__enter__()
            else:  # beside the decisions: answers taken up at once
                with prompt_thread_switches(LOCK_SWITCH_SECONDS):
                    held = lock.__enter__()
        except LockNotMissing as found:
            self._there = found.there
            return
        except Exception as error:  # beside the reads: as if not begun (the usual way meets it, if needed)
            if not only_if_missing:
                self._error = error
            return
        except BaseException as error:  # raised where the lock is needed: held()
            self._error = error
            return
        held.remove_after = only_if_missing  # made beside the reads: removed unless handed to the apply
        with self._guard:
            if not self._abandoned:
                self._lock, self._held = lock, held
                return
        with suppress(Exception):  # nobody is left to use it
            lock.__exit__(None, None, None)

    @contextmanager
    def held(self) -> Iterator[None]:
        """The lock for the block: the one taken ahead (its error raised now, LockHeldError naming the
        holder, say), or taken now when it was not."""
        self._settle_first()
        if self._thread is not None:
            self._thread.join()
        if self._error is not None:
            raise self._error
        if self._lock is None or self._held is None:  # not taken ahead: the blob was there, the plan not sure
            with apply_lock(
                self._service, self._workload, force=self._force, likely_missing=self._there is False
            ):
                yield
            return
        self._handed = True
        self._held.remove_after = False  # applied: released at the end, as any lock is
        with ExitStack() as stack:
            stack.push(self._lock)  # entered already: left at the block's end
            yield

    def __enter__(self) -> LockAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        if (self._first is None and self._thread is None) or self._handed:
            return
        with self._guard:  # a lock not taken yet is let go by its taker, once taken
            self._abandoned = True
            taken, self._lock = self._lock, None
        if taken is None:
            self._settle_first()  # interrupted (a second Ctrl-C): the takers still let it go
            if self._thread is not None:
                self._thread.join()
            return
        with suppress(Exception):  # not released: it lapses by itself
            taken.__exit__(None, None, None)
