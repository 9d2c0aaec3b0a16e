"""Helpers for end-to-end reconciler tests against the session's local target."""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from azure.batch import BatchClient

    from batchrun.local.target import LocalTarget
    from batchrun.target import Target


@pytest.fixture(scope="session")
def target(local_target: LocalTarget) -> Target:
    from batchrun.target import target_from_local

    return target_from_local(local_target)


class RequestCounter:
    """The emulator's request accounting (``/_emulator/requests``)."""

    def __init__(self, client: BatchClient) -> None:
        self._client = client

    def reset(self) -> None:
        from azure.core.rest import HttpRequest

        response = self._client.send_request(HttpRequest("POST", "/_emulator/requests/reset"))
        response.raise_for_status()

    def snapshot(self) -> dict[str, Any]:
        from azure.core.rest import HttpRequest

        response = self._client.send_request(HttpRequest("GET", "/_emulator/requests"))
        response.raise_for_status()
        data: dict[str, Any] = response.json()
        return data


@pytest.fixture()
def requests_counter(batch_client: BatchClient) -> Iterator[RequestCounter]:
    yield RequestCounter(batch_client)
