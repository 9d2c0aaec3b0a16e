"""A listing asks for each next page as soon as the page before has come, before that page is parsed: the
service makes the next page while the client parses."""

from __future__ import annotations

import itertools
import threading
from typing import Any

import pytest
from azure.batch import BatchClient
from azure.core.pipeline.policies import ContentDecodePolicy
from azure.core.pipeline.transport import RequestsTransport

from batchrun.azure.pages import next_link_at_end
from batchrun.azure.rest import list_json
from batchrun.errors import TargetError

LINK = "https://acct.westeurope.batch.azure.com/jobs/j/tasks?api-version=2025-06-01&$skiptoken=t-999"


@pytest.mark.parametrize(
    ("body", "link"),
    [
        (b'{"value":[{"id":"a"}],"odata.nextLink":"' + LINK.encode() + b'"}', LINK),
        (b'{\n  "value": [],\n  "odata.nextLink" : "' + LINK.encode() + b'"\n}\n', LINK),
        (b'{"value":[],"odata.nextLink":"https:\\/\\/b\\/x?a=1\\u0026b=2"}', "https://b/x?a=1&b=2"),
        # the link first, not last: found once the page is parsed
        (b'{"odata.nextLink":"' + LINK.encode() + b'","value":[]}', ""),
        (b'{"value":[{"id":"a"}]}', ""),
        # inside a string every quote is escaped: not the page's own link
        (b'{"value":[{"id":"a","x":",\\"odata.nextLink\\":\\"https://evil\\"}"}]}', ""),
        (b'{"value":[],"odata.nextLink":"bad \\q escape"}', ""),
        (b'{"value":[],"odata.nextLink":"' + b"x" * 9000 + b'"}', ""),  # longer than what is searched
        (b"", ""),
    ],
)
def test_the_next_link_is_read_from_a_body_that_ends_with_it(body: bytes, link: str) -> None:
    assert next_link_at_end(body) == link


def test_each_next_page_is_asked_for_before_the_page_before_is_parsed(
    batch_client: BatchClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    from azure.batch.models import BatchJobCreateOptions, BatchPoolInfo, BatchTaskCreateOptions

    job_id = "pages-ahead"
    batch_client.create_job(BatchJobCreateOptions(id=job_id, pool_info=BatchPoolInfo(pool_id="no-such-pool")))
    try:
        ids = [f"t{i}" for i in range(7)]
        batch_client.create_tasks(
            job_id, [BatchTaskCreateOptions(id=i, command_line="/bin/true") for i in ids]
        )
        events: list[tuple[str, str]] = []
        lock = threading.Lock()
        send, parse = RequestsTransport.send, ContentDecodePolicy.deserialize_from_http_generics

        def sent(self: RequestsTransport, request: Any, **options: Any) -> Any:
            with lock:
                events.append(("sent", request.url))
            return send(self, request, **options)

        def parsed(response: Any, encoding: str | None = None) -> Any:
            with lock:
                events.append(("parsed", response.request.url))
            return parse(response, encoding)

        monkeypatch.setattr(RequestsTransport, "send", sent)
        monkeypatch.setattr(ContentDecodePolicy, "deserialize_from_http_generics", staticmethod(parsed))
        listed = [item["id"] for item in list_json(batch_client, f"/jobs/{job_id}/tasks", page_size=2)]
    finally:
        monkeypatch.undo()
        batch_client.begin_delete_job(job_id, polling_interval=0.2).result()
    assert listed == ids
    pages = [url for kind, url in events if kind == "sent"]
    assert len(pages) == 4  # 2 + 2 + 2 + 1 tasks
    for number, (page, after) in enumerate(itertools.pairwise(pages)):
        asked_at, parsed_at = events.index(("sent", after)), events.index(("parsed", page))
        assert asked_at < parsed_at, f"page {number + 2} was asked for after page {number + 1} was parsed"


class _Answer:
    def __init__(self, parsed: dict[str, Any], body: bytes) -> None:
        self.http_response, self.context, self.status_code = self, {"deserialized_data": parsed}, 200
        self._body = body

    def body(self) -> bytes:
        return self._body

    def raise_for_status(self) -> None:
        return None


class _Config:
    api_version = "2025-06-01"


class _BatchWhosePageDisagrees:
    """A page whose body ends with one link and whose parse names another (no real JSON does)."""

    _config = _Config()

    def send_request(self, request: Any, **options: Any) -> _Answer:
        answer = _Answer(
            {"value": [{"id": "a"}], "odata.nextLink": "http://batch/jobs/j/tasks?page=2"},
            b'{"value":[{"id":"a"}],"odata.nextLink":"http://batch/jobs/j/tasks?page=9"}',
        )
        options["raw_response_hook"](answer)
        return answer


def test_a_link_read_early_that_the_parsed_page_does_not_name_is_an_error() -> None:
    with pytest.raises(TargetError, match="page=9"):
        list(list_json(_BatchWhosePageDisagrees(), "/jobs/j/tasks"))  # type: ignore[arg-type]


class _BatchWithoutHooks:
    """Pages answered at once by a client that calls no pipeline hook: no link is read early."""

    _config = _Config()

    def __init__(self, pages: int) -> None:
        self.pages, self.asked = pages, 0

    def send_request(self, request: Any, **options: Any) -> _Answer:
        number, self.asked = self.asked, self.asked + 1
        more = (
            {"odata.nextLink": f"http://batch/jobs/j/tasks?page={number + 1}"}
            if number + 1 < self.pages
            else {}
        )
        return _Answer({"value": [{"id": f"t{number}"}], **more}, b"")


def test_a_page_whose_link_is_read_once_parsed_does_not_wait_for_the_next_request_to_leave(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The wait for the next request to leave is only for a page still to be parsed: one parsed already
    (its link not read early) goes on at once, even when the client never says that a request left."""
    import time

    monkeypatch.setattr("batchrun.azure.pages.SENT_WAIT", 30.0)
    started = time.monotonic()
    listed = [item["id"] for item in list_json(_BatchWithoutHooks(5), "/jobs/j/tasks")]  # type: ignore[arg-type]
    assert listed == [f"t{i}" for i in range(5)]
    assert time.monotonic() - started < 10  # 4 waits of 30 s each if it waited
