"""The pages of a Batch list operation after its first, each asked for as soon as the page before has come.

Batch writes a page's ``odata.nextLink`` as its last member, after ``value``. So the next page is asked for
when the body has arrived, before it is parsed: the service makes the next page while the client parses this
one (a 1,000-task page is 330 KB of JSON, 2.5 ms to parse). A body that does not end with the link (another
order, a link too long to look for) is parsed first and its link followed then, as a plain loop would. The
link read early is checked against the parsed page's.
"""

from __future__ import annotations

import json
import queue
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from batchrun.errors import TargetError

PAGES_AHEAD = 2  # pages asked for and not yet taken by the caller, at most (up to 1,000 tasks each)

# The last member of a list page: `,"odata.nextLink":"<link>"}`, as JSON writes it (escapes in the link).
_NEXT_LINK_AT_END = re.compile(rb',\s*"odata\.nextLink"\s*:\s*("(?:[^"\\]|\\.)*")\s*}\s*$')
_LINK_SEARCHED = 8192  # bytes from a body's end searched for its link

# fetch(link, early, sending): the page at ``link`` parsed; ``early`` is called with the raw body of its
# answer (not of a failed attempt), before it is parsed, and ``sending`` when its request is about to leave.
# A fetch that cannot call them (a fake client) does not.
Fetch = Callable[[str, Callable[[bytes], None], Callable[[], None]], dict[str, Any]]
SENT_WAIT = 0.05  # s, at most: a request is signed and sent in a millisecond or two


def next_link_at_end(body: bytes) -> str:
    """The page's ``odata.nextLink`` when it is the body's last member, read without parsing the page; ""
    otherwise. Inside a JSON string every quote is escaped, so a match at the end is the page's own member."""
    found = _NEXT_LINK_AT_END.search(body, max(0, len(body) - _LINK_SEARCHED))
    if found is None:
        return ""
    try:
        link = json.loads(found[1])
    except ValueError:  # an escape JSON does not have: the page's parse says what is wrong
        return ""
    return link if isinstance(link, str) else ""


def page_link(page: dict[str, Any]) -> str:
    return str(page.get("odata.nextLink") or "")


class PagesAhead:
    """Pages after the first, in order (:meth:`pages`). Each page's fetch asks for the next one as soon as
    its body has come (or once parsed), on a second thread, while at most ``PAGES_AHEAD`` pages wait for the
    caller. ``stopped()``: ask for no further page."""

    def __init__(self, fetch: Fetch, stopped: Callable[[], bool]) -> None:
        self._fetch = fetch
        self._stopped = stopped
        self._ordered: queue.Queue[Future[dict[str, Any]] | None] = queue.Queue()
        self._room = threading.Semaphore(PAGES_AHEAD)
        self._closed = threading.Event()
        self._threads: ThreadPoolExecutor | None = None
        self._lock = threading.Lock()

    def follow(self, asked: str, page: dict[str, Any]) -> bool:
        """After a page is parsed: ask for its next page unless it was asked for already (``asked``, its
        link read early). False when there is none (the listing ends or was stopped)."""
        link = page_link(page)
        if asked:
            if asked != link:
                raise TargetError(
                    f"a Batch list page ends with the next link {asked!r} but names {link!r}; run again"
                )
            return True
        if link and not self._stopped():
            return self.ask(link, wait=False)  # parsed already: nothing left to overlap
        return False

    def early(self, asked: list[str]) -> Callable[[bytes], None]:
        """The hook that asks for the next page when a body has come, noting its link in ``asked``."""

        def on_body(body: bytes) -> None:
            link = next_link_at_end(body)
            if link and not asked and not self._stopped() and self.ask(link):
                asked.append(link)

        return on_body

    def ask(self, link: str, wait: bool = True) -> bool:
        """Start fetching the page at ``link`` once fewer than ``PAGES_AHEAD`` wait (False once closed);
        ``wait``: until its request leaves, when the thread that asks goes on to parse a page, which holds
        Python's lock for milliseconds at a time (the request would otherwise leave only after it)."""
        while not self._room.acquire(timeout=0.05):
            if self._closed.is_set():
                return False
        sent = threading.Event()
        with self._lock:
            if self._closed.is_set():
                return False
            if self._threads is None:
                self._threads = ThreadPoolExecutor(max_workers=2, thread_name_prefix="batchrun-page")
            self._ordered.put(self._threads.submit(self._page, link, sent))
        if wait:
            sent.wait(SENT_WAIT)
        return True

    def fetched(self, link: str, sending: Callable[[], None] = lambda: None) -> tuple[dict[str, Any], bool]:
        """The page at ``link`` (the first page: ""), its next page asked for as soon as its body has come,
        else once parsed; and whether there is a next page."""
        asked: list[str] = []
        page = self._fetch(link, self.early(asked), sending)
        return page, self.follow(asked[0] if asked else "", page)

    def _page(self, link: str, sent: threading.Event) -> dict[str, Any]:
        try:
            page, more = self.fetched(link, sent.set)
            if not more:
                self._ordered.put(None)
        except BaseException:
            self._ordered.put(None)  # after this page's future, which raises
            raise
        finally:
            sent.set()
        return page

    def pages(self) -> Iterator[dict[str, Any]]:
        """The pages asked for, in order, until the last (or the first that failed, raised here)."""
        while (future := self._ordered.get()) is not None:
            self._room.release()
            yield future.result()

    def close(self) -> None:
        """No further page is asked for; waits for a fetch under way."""
        with self._lock:
            self._closed.set()
            threads = self._threads
        if threads is not None:
            threads.shutdown(wait=True, cancel_futures=True)
